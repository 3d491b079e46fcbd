"""Command line entry point: flags, optional multi-process start-up, then the trainer.

    python -m cnngen_jax.main --config=configs/dcgan.py --workdir=runs/dcgan [--config.KEY=VALUE]

On a TPU pod or a SLURM cluster `jax.distributed` is initialised automatically; for a manual
multi-process launch pass --coordinator_address, --num_processes and --process_id (see launch/).
"""

import importlib.util
import os

from absl import app, flags
from ml_collections import config_flags

from cnngen_jax import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/dcgan.py.", lock_config=True
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and samples.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0, for a manual multi-process launch."
)
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a manual launch.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in a manual launch.")
flags.mark_flags_as_required(["config", "workdir"])


def _on_managed_cluster() -> bool:
    """A Cloud TPU VM (libtpu installed; JAX finds the slice's hosts from the TPU metadata) or
    a multi-task SLURM job (JAX reads the SLURM variables)."""
    on_tpu_vm = importlib.util.find_spec("libtpu") is not None
    return on_tpu_vm or int(os.environ.get("SLURM_NTASKS", "1")) > 1


def initialize_distributed() -> None:
    import jax

    manual = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if any(v is not None for v in manual):
        if any(v is None for v in manual):
            cli.fail(
                "a manual multi-process launch needs all of --coordinator_address, "
                "--num_processes and --process_id"
            )
        jax.distributed.initialize(*manual)
    elif _on_managed_cluster():
        jax.distributed.initialize()


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from cnngen_jax import train

    with cli.reported_errors():
        initialize_distributed()
        train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
