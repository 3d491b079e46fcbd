"""Run outputs: metrics.jsonl, TensorBoard events, PNG grids and the console progress line.

Only process 0 writes; in other processes the writer is silent.
"""

import json
import os
import sys
import time
from typing import Any

import numpy as np

from cnngen_jax import images


class RunWriter:
    """Writes scalars and image grids of a run into its workdir."""

    def __init__(self, workdir: str, enabled: bool):
        self.workdir = workdir
        self.enabled = enabled
        self.metrics_path = os.path.join(workdir, "metrics.jsonl")
        self.samples_dir = os.path.join(workdir, "samples")
        self._tensorboard = None
        if enabled:
            os.makedirs(self.samples_dir, exist_ok=True)
            self._tensorboard = _summary_writer_class()(os.path.join(workdir, "tensorboard"))

    def forget_after(self, step: int) -> None:
        """Drops metrics logged after `step`: a resumed run logs those steps again, identically."""
        if not (self.enabled and os.path.exists(self.metrics_path)):
            return
        with open(self.metrics_path) as f:
            lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
        tmp = self.metrics_path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(lines)
        os.replace(tmp, self.metrics_path)

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps({"step": step, **scalars}) + "\n")
        for name, value in scalars.items():
            self._tensorboard.add_scalar(name, value, step)
        self._tensorboard.flush()

    def write_images(self, step: int, batches: dict[str, np.ndarray]) -> None:
        """Each batch in [-1, 1] as `samples/{name}_{step}.png` and a TensorBoard image."""
        if not self.enabled:
            return
        for name, batch in batches.items():
            grid = images.make_grid(batch)
            images.save_png(grid, os.path.join(self.samples_dir, f"{name}_{step:07d}.png"))
            self._tensorboard.add_image(name, grid, step, dataformats="HWC")
        self._tensorboard.flush()

    def write_text(self, name: str, text: str) -> None:
        if self.enabled:
            print(text, flush=True)
            self._tensorboard.add_text(name, f"```\n{text}\n```", 0)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


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
