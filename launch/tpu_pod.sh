#!/bin/bash
# One training run on every host of a Cloud TPU VM slice. The same command runs on each worker;
# cnngen_jax.main initialises jax.distributed from the TPU metadata. The workdir and
# --config.data_dir must be the same path on every host: a shared filesystem mount (NFS,
# Filestore). Process 0 writes metrics and pictures; Orbax checkpoints need every host.
#
#   launch/tpu_pod.sh TPU_NAME ZONE configs/dcgan.py /mnt/shared/runs/dcgan [--config.KEY=VALUE ...]
#
# ssh hands --command to the worker's shell (bash on Cloud TPU VMs) as one string: every argument
# is quoted for it (printf %q), so a value with spaces, quotes or `$` arrives exactly as given.
set -euo pipefail
if (($# < 4)); then
  echo "usage: $0 TPU_NAME ZONE CONFIG WORKDIR [--config.KEY=VALUE ...]" >&2
  exit 2
fi
tpu=$1 zone=$2 config=$3 workdir=$4
shift 4
args=$(printf ' %q' "--config=$config" "--workdir=$workdir" "$@")
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all \
  --command="cd ~/cnngen_jax && python -m cnngen_jax.main$args"
