"""What the command-line entry points share: flag parsing and the mapping of user mistakes to
one `error:` line and an exit code, never a stack trace."""

import contextlib
import sys
from collections.abc import Iterator

from absl import flags, logging

from cnngen_jax import files
from cnngen_jax.errors import NonFiniteLossError, Preempted, UserError

EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 3
EXIT_PREEMPTED = 4  # a checkpoint of the last step is saved: re-run to resume


def fail(message: str, code: int = EXIT_USER_ERROR) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _explain_flag_error(error: Exception, argv: list[str]) -> str:
    text = str(error).strip()
    if "Traceback (most recent call last)" in text:  # the config file raised: its last line
        text = text.splitlines()[-1].strip()
        if "get_config() takes 0 positional arguments" in text:  # FILE:PRESET, FILE has none
            given = next((a for a in argv if a.startswith("--config=")), "--config=FILE:PRESET")
            path = given.removeprefix("--config=").rpartition(":")[0]
            return f"{path} has no presets; pass --config={path} without ':PRESET'"
        return f"the config file given by --config failed: {text}"
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


def class_numbers(values: list[str] | None, setting: str = "--labels") -> list[int] | None:
    """The classes of a `--labels=3,5,8` flag (None when not given), or a UserError."""
    return numbers(values, setting, int, "class numbers, e.g. 3,5,8")


def numbers(
    values: list[str] | None, setting: str, kind: type = float, what: str = "numbers, e.g. 0,0.5,1"
) -> list | None:
    """The numbers of a comma-list flag `setting` (None when not given), or a UserError naming
    it."""
    if values is None:
        return None
    if not values:  # `--labels=`: an empty list, which would otherwise mean class 0 or nothing
        raise UserError(f"{setting}= is empty; give {what}, or leave the flag out")
    try:
        return [kind(value) for value in values]
    except ValueError:
        raise UserError(f"{setting}={','.join(values)} must be {what}") from None


def parse_flags(argv: list[str]) -> list[str]:
    """absl's parser (pass as `app.run(..., flags_parser=parse_flags)`), with every mistake
    reported as one line and exit code 2."""
    try:
        remaining = flags.FLAGS(argv)
        if "config" in flags.FLAGS:
            flags.FLAGS["config"].value.keys()  # config_flags defers a failed load to first use
        return remaining
    except Exception as error:  # config_flags raises plain exceptions for user mistakes
        fail(_explain_flag_error(error, argv))


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Runs a command body: user mistakes exit 2, a diverged run exits 3 and a preempted one
    (saved, to be resumed) 4, each with one line. Orbax and TFDS log every step of their work;
    the console is kept for the command."""
    logging.set_verbosity(logging.ERROR)
    try:
        yield
    except UserError as error:
        fail(str(error), EXIT_USER_ERROR)
    except NonFiniteLossError as error:
        fail(str(error), EXIT_NON_FINITE)
    except Preempted as error:
        print(str(error), file=sys.stderr, flush=True)
        sys.exit(EXIT_PREEMPTED)


def check_new_directory(path: str, flag: str = "--out") -> None:
    """A UserError unless `path` is a new or empty directory: a command never overwrites."""
    directory = files.path(path, flag)
    if directory.is_dir() and any(directory.iterdir()):
        raise UserError(
            f"{flag}={path} is not empty; give a new directory (nothing is overwritten)"
        )
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{flag}={path} is a file; give a directory")
