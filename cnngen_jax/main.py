"""Command line entry point: flags, optional multi-process start-up, then the trainer.

    python -m cnngen_jax.main --config=configs/dcgan.py --workdir=runs/dcgan [--config.KEY=VALUE]

On a TPU pod or a SLURM cluster `jax.distributed` is initialised automatically; for a manual
multi-process launch pass --coordinator_address, --num_processes and --process_id (see launch/).
"""

import importlib.util
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

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

EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 3


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
            raise SystemExit(
                "error: a manual multi-process launch needs all of --coordinator_address, "
                "--num_processes and --process_id"
            )
        jax.distributed.initialize(*manual)
    elif _on_managed_cluster():
        jax.distributed.initialize()


def _explain_flag_error(error: Exception, argv: list[str]) -> str:
    text = str(error).strip()
    if isinstance(error, flags.Error):
        return f"{text}. Run with --helpfull to list the flags."
    if isinstance(error, OSError):
        first = " ".join(line.strip() for line in text.splitlines()[-2:])
        return (
            f"cannot load the file given by --config ({first}); "
            "pass an existing config file, e.g. --config=configs/dcgan.py"
        )
    if isinstance(error, (AttributeError, KeyError)):
        key = text.strip("\"'")
        given = " ".join(a.split("=")[0] for a in argv if a.startswith("--config.") and key in a)
        return (
            f"unknown config key {key!r} in {given or '--config.*'}; every setting is "
            "declared in the config file (locked), so check the spelling against that file"
        )
    return f"invalid flags: {type(error).__name__}: {text}"


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parser, with every mistake reported as one line and exit code 2."""
    try:
        return flags.FLAGS(argv)
    except Exception as error:  # config_flags raises plain exceptions for user mistakes
        print(f"error: {_explain_flag_error(error, argv)}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from cnngen_jax import train
    from cnngen_jax.errors import NonFiniteLossError, UserError

    # Orbax and TFDS log every step of their work at INFO/WARNING; keep the console for the run.
    logging.set_verbosity(logging.ERROR)
    initialize_distributed()
    try:
        train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
    except NonFiniteLossError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_NON_FINITE)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
