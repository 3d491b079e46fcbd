#!/bin/bash
# One training run on every host of a Cloud TPU VM slice. The same command runs on each worker;
# cnngen_jax.main initialises jax.distributed from the TPU metadata. The workdir and
# --config.data_dir must be the same path on every host: a shared filesystem mount (NFS,
# Filestore). Process 0 writes metrics and pictures; Orbax checkpoints need every host.
#
#   launch/tpu_pod.sh TPU_NAME ZONE configs/dcgan.py /mnt/shared/runs/dcgan [--config.KEY=VALUE ...]
set -euo pipefail
tpu=$1 zone=$2 config=$3 workdir=$4
shift 4
gcloud compute tpus tpu-vm ssh "$tpu" --zone="$zone" --worker=all --command="
  cd ~/cnngen_jax && python -m cnngen_jax.main --config=$config --workdir=$workdir $*"
