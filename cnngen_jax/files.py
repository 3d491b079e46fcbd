"""Every file a run writes or reads (its workdir, the metric caches, command outputs) goes through
one path abstraction, `etils.epath` (the one Orbax uses), so `--workdir=gs://bucket/run` works on
a TPU pod as a local directory does.

    workdir = files.path(setting)             # epath.Path: `~` expanded, local paths absolute
    files.write_text(workdir / "config.json", text)   # atomic where the filesystem allows
    files.append_line(workdir / "metrics.jsonl", json.dumps(row))
    config = files.read_json(workdir / "config.json")  # a UserError on a missing or torn file

Local paths are plain files (epath's `os` backend); `gs://`, `s3://`, `az://` and `hf://` go to
fsspec (gcsfs, s3fs, ...) or TensorFlow's gfile when TensorFlow is installed. Object stores
publish an object whole when its upload completes, but have neither renames nor appends: a
write there is one upload, and an append rewrites the object (`append_line`).

Caches: a local path setting that starts with `~/.cache` (the defaults of `compilation_cache_dir`,
the evaluators' `cache_dir`, `vgg_weights`; the oneDNN kernels) lives under `cache_home()`,
`$XDG_CACHE_HOME` when set, else `~/.cache`, so one variable moves every cache.
"""

import io
import json
import os
import uuid
import zipfile
from typing import Any

import numpy as np
from etils import epath
from PIL import Image

from cnngen_jax.errors import UserError

PathLike = str | os.PathLike


def is_remote(value: PathLike) -> bool:
    """Whether `value` names a file system by URI (`gs://bucket/run`) rather than a local path."""
    return "://" in os.fspath(value)


CACHE_PREFIX = "~/.cache"


def cache_home() -> str:
    """The user's cache directory, the root of every default cache: `$XDG_CACHE_HOME` (the XDG
    base directory variable) when set, else `~/.cache`."""
    return os.environ.get("XDG_CACHE_HOME") or os.path.expanduser(CACHE_PREFIX)


def expand_local(text: str) -> str:
    """A local path with `~/.cache` resolved to `cache_home()` and any other `~` expanded."""
    if text == CACHE_PREFIX or text.startswith(CACHE_PREFIX + "/"):
        text = cache_home() + text[len(CACHE_PREFIX) :]
    return os.path.expanduser(text)


def path(value: PathLike, setting: str = "") -> epath.Path:
    """The `epath.Path` of a setting: a local path with `~` expanded and made absolute (Orbax
    needs absolute paths, and a later change of directory must not move the run); a URI as
    given. `setting` (e.g. "--workdir") names the setting in the error for an unknown scheme.
    `~/.cache` is `cache_home()` (`expand_local`)."""
    text = os.fspath(value)
    if not text:
        raise ValueError("an empty path")
    if not is_remote(text):
        return epath.Path(os.path.abspath(expand_local(text)))
    try:
        return epath.Path(text)
    except (KeyError, NotImplementedError):
        scheme = text.split("://", 1)[0]
        raise UserError(
            f"{setting or 'path'}={text}: unknown file system {scheme}:// (use a local path or "
            "gs://, s3://, az://, hf://)"
        ) from None


def makedirs(directory: PathLike) -> epath.Path:
    """`directory` and its parents, created if missing (a no-op on object stores)."""
    directory = path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def write_bytes(target: PathLike, data: bytes) -> None:
    """Writes `data` to `target` whole or not at all: locally through a temporary file in the
    same directory renamed over it, so a reader (or a process killed mid-write) never sees half
    a file; on an object store as one upload, which publishes the object whole."""
    target = path(target)
    if is_remote(target):  # no directories to make on an object store
        target.write_bytes(data)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        temporary.write_bytes(data)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: PathLike, text: str) -> None:
    """`write_bytes` of UTF-8 text."""
    write_bytes(target, text.encode("utf-8"))


def write_json(target: PathLike, value: Any, indent: int | None = 2) -> None:
    """`value` as a JSON file, written atomically (`write_bytes`)."""
    write_text(target, json.dumps(value, indent=indent) + "\n")


def append_line(target: PathLike, line: str) -> None:
    """Appends `line` and a newline to `target` (created if missing). Locally one `write` of an
    append-mode file; object stores have no append (gcsfs silently opens "a" as "w"), so there
    the object is read and rewritten whole with the line added. After a last line cut short
    (a process killed mid-append) the new line starts on a line of its own."""
    target = path(target)
    line = line.rstrip("\n") + "\n"
    if not is_remote(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.stat().length:  # after a line cut short, a line of its own
            with target.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
        with target.open("a") as f:
            f.write(line)
        return
    old = target.read_bytes() if target.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    write_bytes(target, old + line.encode("utf-8"))


def read_bytes(source: PathLike) -> bytes:
    return path(source).read_bytes()


def read_text(source: PathLike, hint: str = "") -> str:
    """The UTF-8 text of `source`; a UserError (with `hint`, the fix) if it is missing or not
    text."""
    source = path(source)
    try:
        return source.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{source} does not exist{_hint(hint)}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{source} is not UTF-8 text ({error}){_hint(hint)}") from None


def read_json(source: PathLike, hint: str = "") -> Any:
    """The JSON value in `source`; a UserError (with `hint`) if it is missing, or torn or
    otherwise invalid (e.g. written by a process killed mid-write on a filesystem without
    atomic renames)."""
    text = read_text(source, hint)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path(source)} is not valid JSON ({error}): a torn or edited file{_hint(hint)}"
        ) from None


def read_jsonl(source: PathLike, torn_last_ok: bool = False, hint: str = "") -> list[Any]:
    """One JSON value per non-blank line of `source` ([] if it does not exist). An invalid line
    is a UserError naming it, except, with `torn_last_ok`, a last line without its newline that
    does not parse (an append cut short), which is dropped."""
    source = path(source)
    if not source.exists():
        return []
    text = read_text(source, hint)
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            if torn_last_ok and number == len(lines):  # no newline after it: an unfinished append
                break
            raise UserError(
                f"{source} line {number} is not valid JSON ({error}): a torn or edited file"
                f"{_hint(hint)}"
            ) from None
    return rows


def copy_tree(source: PathLike, target: PathLike) -> list[epath.Path]:
    """Copies the files below the local directory `source` to the same places below `target`
    (local or a URI), each written whole (`write_bytes`); for outputs that a library can only
    write locally (e.g. a TFDS build), made in a temporary directory first. Returns the files
    written."""
    source, target = os.fspath(source), path(target)
    written = []
    for folder, _, names in sorted(os.walk(source)):
        relative = os.path.relpath(folder, source)
        destination = target if relative == "." else target / relative
        destination.mkdir(parents=True, exist_ok=True)
        for name in sorted(names):
            with open(os.path.join(folder, name), "rb") as f:
                write_bytes(destination / name, f.read())
            written.append(destination / name)
    return written


def write_image(target: PathLike, image: np.ndarray, image_format: str = "PNG") -> None:
    """A uint8 (H, W, C) or (H, W) image, encoded by PIL and written atomically."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=image_format)
    write_bytes(target, buffer.getvalue())


def write_npy(target: PathLike, array: np.ndarray) -> None:
    """One array as an .npy (`np.save`), written atomically (`write_bytes`)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_bytes(target, buffer.getvalue())


def write_npz(target: PathLike, entries: dict[str, np.ndarray]) -> None:
    """Arrays as an .npz, written atomically (`write_bytes`)."""
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    write_bytes(target, buffer.getvalue())


def read_npz(source: PathLike) -> dict[str, np.ndarray]:
    """Every entry of an .npz, refusing pickled objects (a ValueError, as for a truncated or
    otherwise broken file)."""
    try:
        with np.load(io.BytesIO(read_bytes(source)), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{source} is not a complete .npz file ({error})") from None


def _hint(hint: str) -> str:
    return f"; {hint}" if hint else ""
