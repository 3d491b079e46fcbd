"""Two processes on localhost train one run, identical to a one-process run of the same batch."""

import importlib.util
import json
import os

import pytest

from tests.conftest import ROOT, run_main, tiny_flags

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


def test_two_processes_match_one_process(tmp_path, data_dir, cache_dir, capfd):
    # Checkpointing every step makes every process compare its parameters with the others'
    # (parallel.assert_replicas_equal) at every step; a mismatch fails the run.
    flags = tiny_flags(data_dir, cache_dir, num_train_steps=6, checkpoint_every_steps=1)
    args = ["--config=configs/dcgan.py", *flags]
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = load_launcher().launch(2, [*args, f"--workdir={tmp_path / 'two'}"])
    finally:
        os.chdir(cwd)
    output = capfd.readouterr().out
    assert code == 0, output[-3000:]
    assert "[0] step 6/6" in output and "[1] step" not in output  # only process 0 reports
    single = run_main([*args, f"--workdir={tmp_path / 'one'}"])
    assert single.returncode == 0, single.stderr[-3000:]

    two, one = metrics(tmp_path / "two"), metrics(tmp_path / "one")
    assert [m["step"] for m in two] == [m["step"] for m in one] == [1, 2, 3, 4, 5, 6]
    for a, b in zip(two, one, strict=True):
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (b["step"], key)
    assert sorted(os.listdir(tmp_path / "two" / "checkpoints"))[-1] == "6"
