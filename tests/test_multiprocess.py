"""Two processes on localhost train one run, identical to a one-process run of the same batch,
through a preemption."""

import importlib.util
import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_main, tiny_flags, wait_until

THROUGHPUT = ("steps_per_sec", "images_per_sec")


def load_launcher():
    path = os.path.join(ROOT, "launch", "local_multiprocess.py")
    spec = importlib.util.spec_from_file_location("local_multiprocess", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metrics(workdir) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in THROUGHPUT} for line in f]


@pytest.mark.e2e
def test_two_processes_match_one_process_through_a_preemption(tmp_path, data_dir, cache_dir):
    """Two processes, stopped by SIGTERM (as preemption reaches every host of a pod), save one
    step together, resume from it, and log what one process logs uninterrupted."""

    # Every checkpoint makes every process compare its parameters with the others'
    # (parallel.assert_replicas_equal); a mismatch fails the run.
    def args(workdir, steps: int) -> list[str]:
        settings = dict(num_train_steps=steps, log_every_steps=5, checkpoint_every_steps=100)
        flags = tiny_flags(data_dir, cache_dir, **settings)
        return ["--config=configs/dcgan.py", *flags, f"--workdir={workdir}"]

    two = tmp_path / "two"
    launcher = [sys.executable, os.path.join("launch", "local_multiprocess.py"), "--"]
    first = subprocess.Popen(
        [*launcher, *args(two, 1000)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    wait_until(first, (two / "metrics.jsonl").exists, "metrics")
    first.send_signal(signal.SIGTERM)
    output = first.communicate(timeout=120)[0]
    assert first.returncode == 4, output[-3000:]
    lines = [line for line in output.splitlines() if "preempted: stopped after step" in line]
    stops = {line.split("after step ")[1].split()[0] for line in lines}
    assert len(stops) == 1 and "[0] preempted" in output and "[1] preempted" in output, output
    assert "[0] step 5/1000" in output and "[1] step" not in output  # only process 0 reports
    step = int(stops.pop())
    assert str(step) in os.listdir(two / "checkpoints")

    # Resume to a few steps past the preemption, and compare with one uninterrupted process.
    end = step + 4
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert load_launcher().launch(2, args(two, end)) == 0
    finally:
        os.chdir(cwd)
    single = run_main(args(tmp_path / "one", end))
    assert single.returncode == 0, single.stderr[-3000:]
    resumed, one = metrics(two), metrics(tmp_path / "one")
    logged = sorted({*range(5, end + 1, 5), end})  # every fifth step, and the last
    assert [m["step"] for m in resumed] == [m["step"] for m in one] == logged
    for a, b in zip(resumed, one, strict=True):
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (b["step"], key)
    assert max(int(name) for name in os.listdir(two / "checkpoints")) == end
