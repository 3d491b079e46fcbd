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
from cnngen_jax.errors import UserError

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


def manual_launch(
    coordinator: str | None, num_processes: int | None, process_id: int | None
) -> tuple[str, int, int] | None:
    """The checked (--coordinator_address, --num_processes, --process_id) of a manual
    multi-process launch, None without one, or a UserError naming the flags: a bad combination
    would otherwise hang in or crash out of `jax.distributed.initialize`."""
    manual = (coordinator, num_processes, process_id)
    if all(v is None for v in manual):
        return None
    flags_ = "--coordinator_address, --num_processes and --process_id"
    if any(v is None for v in manual):
        raise UserError(f"a manual multi-process launch needs all of {flags_}")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--coordinator_address={coordinator} must be host:port of process 0")
    if num_processes < 1:
        raise UserError(f"--num_processes={num_processes} must be at least 1")
    if not 0 <= process_id < num_processes:
        raise UserError(
            f"--process_id={process_id} must be in [0, --num_processes={num_processes})"
        )
    return coordinator, num_processes, process_id


def initialize_distributed() -> None:
    import jax

    manual = manual_launch(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if manual is None and not _on_managed_cluster():
        return
    try:
        jax.distributed.initialize(*(manual or ()))
    except Exception as error:  # JAX raises RuntimeError, ValueError, XlaRuntimeError, ...
        given = (
            "--coordinator_address={}, --num_processes={}, --process_id={}".format(*manual)
            if manual
            else "the cluster's environment (TPU metadata or SLURM)"
        )
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise UserError(
            f"jax.distributed.initialize failed with {given} "
            f"({type(error).__name__}: {first_line}); check that process 0 runs at the "
            "coordinator address, that every process is given the same address and "
            "--num_processes, and a distinct --process_id"
        ) from None


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from cnngen_jax import train

    with cli.reported_errors():
        initialize_distributed()
        train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
