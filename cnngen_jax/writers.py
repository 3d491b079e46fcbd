"""Run outputs: metrics.jsonl, TensorBoard events, PNG grids and the console progress line.

Only process 0 writes; in other processes the writer is silent. Every file goes through
`cnngen_jax.files`, so the workdir may be local or a URI such as gs://bucket/run.
"""

import io
import json
import sys
import threading
import time
from collections import defaultdict
from typing import Any

import jax
import numpy as np
from etils import epath

from cnngen_jax import files, images


class RunWriter:
    """Writes scalars and image grids of a run into its workdir."""

    def __init__(self, workdir: files.PathLike, enabled: bool):
        self.workdir = files.path(workdir, "--workdir")
        self.enabled = enabled
        self.metrics_path = self.workdir / "metrics.jsonl"
        self.samples_dir = self.workdir / "samples"
        self._tensorboard = None
        if enabled:
            files.makedirs(self.samples_dir)
            self._tensorboard = _summary_writer(self.workdir / "tensorboard")

    def forget_after(self, step: int) -> None:
        """Drops metrics logged after `step`: a resumed run logs those steps again, identically.
        A last line cut short (the process killed mid-append) goes too."""
        if not (self.enabled and self.metrics_path.exists()):
            return
        rows = files.read_jsonl(self.metrics_path, torn_last_ok=True)
        kept = "".join(json.dumps(row) + "\n" for row in rows if row["step"] <= step)
        files.write_text(self.metrics_path, kept)

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        files.append_line(self.metrics_path, json.dumps({"step": step, **scalars}))
        for name, value in scalars.items():
            self._tensorboard.add_scalar(name, value, step)
        self._tensorboard.flush()

    def write_images(self, step: int, batches: dict[str, np.ndarray]) -> None:
        """Each batch in [-1, 1] as `samples/{name}_{step}.png` and a TensorBoard image."""
        if not self.enabled:
            return
        for name, batch in batches.items():
            grid = images.make_grid(batch)
            files.write_image(self.samples_dir / f"{name}_{step:07d}.png", grid)
            self._tensorboard.add_image(name, grid, step, dataformats="HWC")
        self._tensorboard.flush()

    def write_text(self, name: str, text: str) -> None:
        if self.enabled:
            print(text, flush=True)
            self._tensorboard.add_text(name, f"```\n{text}\n```", 0)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def _summary_writer(logdir: epath.Path) -> Any:
    """A tensorboardX SummaryWriter for `logdir`: local event files as tensorboardX writes them;
    in a URI (gs://...) through `files` (`_register_remote_events`), not through tensorboardX's
    own gs:// writer, which needs google-cloud-storage and bypasses epath."""
    if files.is_remote(logdir):
        _register_remote_events(str(logdir).split("://", 1)[0])
    return _summary_writer_class()(str(logdir))


def _summary_writer_class() -> type:
    """tensorboardX's SummaryWriter, imported without PyTorch.

    tensorboardX imports PyTorch whenever it is installed, only to accept torch tensors (we pass
    NumPy); that costs about 1.3 s of start-up and 200+ MB here. Unless the program has already
    imported torch, it is hidden for the duration of the import.
    """
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        from tensorboardX import SummaryWriter
    finally:
        if hide:
            del sys.modules["torch"]
    return SummaryWriter


# An event file on an object store is rewritten whole at each flush (objects cannot be appended
# to); past this size the writer goes on in a new object, so a flush never uploads more than
# about this much. TensorBoard reads every `*tfevents*` file of a directory, in name order.
EVENT_SEGMENT_BYTES = 8 * 2**20


class _RemoteEventFile:
    """One tensorboardX event file in an object store: records buffered in memory, uploaded
    (`files.write_bytes`) at each flush, continued in `NAME.0001`, `NAME.0002`, ... once a
    segment reaches EVENT_SEGMENT_BYTES. tensorboardX flushes between whole records."""

    def __init__(self, name: str):
        self._name = name
        self._segment = 0
        self._buffer = io.BytesIO()
        self._lock = threading.Lock()
        self._dirty = True  # the (empty) file appears at the first flush, as locally

    def write(self, data: bytes) -> None:
        with self._lock:
            self._buffer.write(data)
            self._dirty = True

    def flush(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            suffix = f".{self._segment:04d}" if self._segment else ""
            files.write_bytes(self._name + suffix, self._buffer.getvalue())
            self._dirty = False
            if self._buffer.tell() >= EVENT_SEGMENT_BYTES:
                self._segment += 1
                self._buffer = io.BytesIO()

    def close(self) -> None:
        self.flush()


class _RemoteEventFactory:
    """tensorboardX's writer-factory interface (`record_writer.register_writer_factory`)."""

    def open(self, name: str) -> _RemoteEventFile:
        return _RemoteEventFile(name)

    def directory_check(self, name: str) -> None:
        files.makedirs(name)


def _register_remote_events(scheme: str) -> None:
    """Makes tensorboardX write event files under `scheme://` through `files` (idempotent)."""
    _summary_writer_class()  # imports tensorboardX without PyTorch
    from tensorboardX import record_writer

    if not isinstance(record_writer.REGISTERED_FACTORIES.get(scheme), _RemoteEventFactory):
        record_writer.register_writer_factory(scheme, _RemoteEventFactory())


class Progress:
    """Throughput and ETA between two console lines."""

    def __init__(self, start_step: int, total_steps: int, batch_size: int):
        self.total_steps = total_steps
        self.batch_size = batch_size
        self._step = start_step
        self._time = time.perf_counter()

    def measure(self, step: int) -> dict[str, float]:
        now = time.perf_counter()
        steps_per_sec = (step - self._step) / max(now - self._time, 1e-9)
        self._step, self._time = step, now
        return {"steps_per_sec": steps_per_sec, "images_per_sec": steps_per_sec * self.batch_size}

    def line(self, step: int, scalars: dict[str, Any]) -> str:
        rate = scalars["steps_per_sec"]
        eta = (self.total_steps - step) / rate if rate > 0 else float("inf")
        values = " ".join(
            f"{k}={v:.4g}" + (f"±{scalars[k + '/std']:.2g}" if k + "/std" in scalars else "")
            for k, v in scalars.items()
            if k not in ("steps_per_sec", "images_per_sec") and "/" not in k
        )
        return (
            f"step {step}/{self.total_steps} | {values} | {rate:.2f} steps/s "
            f"{scalars['images_per_sec']:.0f} img/s | ETA {_duration(eta)}"
        )


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def parameter_overview(networks: dict[str, Any]) -> str:
    """Parameter counts per module and per network, as a small table."""
    lines = []
    for name, params in networks.items():
        per_module: dict[str, int] = defaultdict(int)
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
            module = "/".join(str(getattr(k, "key", k)) for k in path[:-1])
            per_module[module] += int(np.prod(leaf.shape))
        lines.append(f"{name:<40} {sum(per_module.values()):>12,}")
        lines.extend(f"  {module:<38} {count:>12,}" for module, count in per_module.items())
    return "\n".join(lines)
