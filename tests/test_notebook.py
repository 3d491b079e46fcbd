"""launch/colab.ipynb, executed end to end in its small mode (`CNNGEN_NOTEBOOK_SMALL=1`) by a
kernel of the interpreter running the tests, so the notebook cannot fall behind the code."""

import json
import os
import sys

import ipykernel.kernelspec
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOK = os.path.join(ROOT, "launch", "colab.ipynb")


def kernel_manager(tmp_path) -> AsyncKernelManager:
    """A `python3` kernel running `sys.executable`, whatever kernels the machine has installed
    (one of another Python in ~/.local/share/jupyter would otherwise take precedence)."""
    kernels = tmp_path / "kernels"
    ipykernel.kernelspec.write_kernel_spec(str(kernels / "python3"))
    spec = json.loads((kernels / "python3" / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return AsyncKernelManager(
        kernel_name="python3",
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]),
        connection_file=str(tmp_path / "connection.json"),
    )


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.e2e
def test_the_notebook_runs_end_to_end_in_its_small_mode(tmp_path, data_dir):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "CNNGEN_NOTEBOOK_SMALL": "1",
        "CNNGEN_DATA_DIR": data_dir,
        "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
        "HOME": str(tmp_path / "home"),  # caches (XLA, the domain classifier) start empty
    }
    client = NotebookClient(
        notebook,
        km=kernel_manager(tmp_path),
        timeout=120,  # per cell
        resources={"metadata": {"path": str(work)}},  # the kernel's working directory
    )
    # Raises CellExecutionError, with the traceback, at a failing cell; then shuts the kernel down.
    client.execute(env=env, cleanup_kc=True)

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    showing = [cell for cell in code if "display(" in cell.source or "plt.show()" in cell.source]
    assert len(showing) == 4  # the grids and losses of both runs, the drawn samples
    for cell in showing:
        assert any("image/png" in output.get("data", {}) for output in cell.outputs), cell.source
    run, ablation = work / "runs" / "dcgan", work / "runs" / "dcgan_seeds"
    assert (run / "samples" / "samples_0000004.png").is_file()
    (evaluation,) = [
        json.loads(line) for line in (run / "evaluation.jsonl").read_text().splitlines()
    ]
    assert evaluation["step"] == 4 and set(evaluation["protocol"]) == {"sample_quality"}
    assert evaluation["protocol"]["sample_quality"]["num_fake"] == 40
    last = json.loads((ablation / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"g_loss", "g_loss/std", "g_loss/seed_0", "g_loss/seed_1"} <= set(last)
