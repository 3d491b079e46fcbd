"""Run outputs: grids, metrics.jsonl truncation on resume, TensorBoard without PyTorch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cnngen_jax import images
from cnngen_jax.writers import RunWriter
from tests.conftest import ROOT, reference


def test_grid_places_images_row_major_with_padding():
    batch = np.stack([np.full((2, 3, 1), v) for v in (-1.0, 0.0, 1.0)])
    grid = images.make_grid(batch, columns=2, padding=1)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 3) and grid.dtype == np.uint8
    assert (grid[1:3, 1:4] == 0).all() and (grid[1:3, 5:8] == 128).all()
    assert (grid[4:6, 1:4] == 255).all() and (grid[4:6, 5:8] == 0).all()


def test_forget_after_keeps_only_steps_up_to_the_checkpoint(tmp_path):
    writer = RunWriter(str(tmp_path), enabled=True)
    for step in (10, 20, 30):
        writer.write_scalars(step, {"loss": float(step)})
    writer.forget_after(20)
    writer.close()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20]


@pytest.mark.torch
def test_tensorboard_writer_does_not_import_pytorch(tmp_path):
    reference("torch")  # without PyTorch installed there is nothing to avoid
    code = (
        "import sys; from cnngen_jax.writers import RunWriter; "
        f"RunWriter({str(tmp_path)!r}, True).close(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
