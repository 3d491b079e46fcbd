"""`python -m cnngen_jax.main` end to end: outputs, exact resume, kills, bad input, NaN guard."""

import hashlib
import json
import os
import shutil
import signal
import time

import pytest

from tests.conftest import finish, read_metrics, run_main, start_main, tiny_flags, wait_until


def main_args(workdir, data_dir, cache_dir, **overrides) -> list[str]:
    return [
        "--config=configs/dcgan.py",
        f"--workdir={workdir}",
        *tiny_flags(data_dir, cache_dir, **overrides),
    ]


def assert_same_metrics(got: list[dict], want: list[dict]) -> None:
    assert [m["step"] for m in got] == [m["step"] for m in want]
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for key in w:
            assert g[key] == pytest.approx(w[key], rel=1e-6), (g["step"], key)


def snapshot(directory) -> dict[str, str]:
    """Every file under `directory` with a hash of its bytes."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return files


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir, cache_dir):
    workdir = tmp_path_factory.mktemp("finished")
    result = run_main(main_args(workdir, data_dir, cache_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


def test_a_run_writes_every_output(finished_run):
    workdir, result = finished_run
    config = json.loads((workdir / "config.json").read_text())
    assert config["num_train_steps"] == 6 and config["image_size"] == 16
    assert sorted(os.listdir(workdir / "checkpoints")) == ["3", "6"]
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4, 5, 6]
    for key in ("d_loss", "g_loss", "d_x", "d_g_z", "steps_per_sec", "images_per_sec"):
        assert all(key in m for m in metrics), key
    assert sorted(os.listdir(workdir / "samples")) == ["samples_0000003.png", "samples_0000006.png"]
    assert any(
        name.startswith("events.out.tfevents") for name in os.listdir(workdir / "tensorboard")
    )
    assert "generator" in result.stdout and "discriminator" in result.stdout  # parameter overview
    assert "step 6/6" in result.stdout and "img/s" in result.stdout and "ETA" in result.stdout


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory, data_dir, cache_dir):
    """An uninterrupted 400-step run to compare interrupted ones against."""
    workdir = tmp_path_factory.mktemp("reference")
    settings = dict(num_train_steps=400, log_every_steps=10, checkpoint_every_steps=50)
    result = run_main(main_args(workdir, data_dir, cache_dir, **settings))
    assert result.returncode == 0, result.stderr[-3000:]
    return read_metrics(workdir), settings


@pytest.mark.e2e
def test_resumed_run_logs_the_same_metrics(tmp_path, data_dir, cache_dir, long_reference):
    want, settings = long_reference
    first = run_main(
        main_args(tmp_path, data_dir, cache_dir, **{**settings, "num_train_steps": 150})
    )
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_main(main_args(tmp_path, data_dir, cache_dir, **settings))
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resumed" in second.stdout and "at step 150" in second.stdout
    assert_same_metrics(read_metrics(tmp_path), want)


@pytest.mark.e2e
def test_sigterm_saves_the_step_reached_and_the_rerun_resumes_exactly(
    tmp_path, data_dir, cache_dir, long_reference
):
    want, settings = long_reference
    process = start_main(main_args(tmp_path, data_dir, cache_dir, **settings))
    metrics = tmp_path / "metrics.jsonl"

    def logged_twice() -> bool:
        return metrics.exists() and metrics.read_text().count("\n") >= 2

    wait_until(process, logged_twice, "metrics")
    process.send_signal(signal.SIGTERM)  # how TPU and cloud VMs announce preemption
    result = finish(process)
    assert result.returncode == 4, result.stderr[-3000:]
    step = int(result.stderr.split("preempted: stopped after step ")[1].split()[0])
    assert 20 <= step < 400 and str(step) in os.listdir(tmp_path / "checkpoints")
    resumed = run_main(main_args(tmp_path, data_dir, cache_dir, **settings))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {step}" in resumed.stdout
    assert_same_metrics(read_metrics(tmp_path), want)


@pytest.mark.e2e
def test_killed_run_restarts_from_last_complete_checkpoint(
    tmp_path, data_dir, cache_dir, long_reference
):
    want, settings = long_reference
    process = start_main(main_args(tmp_path, data_dir, cache_dir, **settings))
    checkpoints = tmp_path / "checkpoints"

    def saved() -> bool:
        return checkpoints.exists() and any(p.isdigit() for p in os.listdir(checkpoints))

    wait_until(process, saved, "checkpoint")
    process.send_signal(signal.SIGKILL)
    process.wait()
    # A save cut short leaves Orbax's temporary directory behind; it must be ignored.
    partial = checkpoints / "350.orbax-checkpoint-tmp-1"
    partial.mkdir()
    (partial / "half_written").write_bytes(b"\0" * 100)
    result = run_main(main_args(tmp_path, data_dir, cache_dir, **settings))
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_metrics(read_metrics(tmp_path), want)


def copy_run(finished_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run[0], workdir)
    return workdir


BAD_INPUTS = {
    "unknown dataset": (["--config.dataset=imagenet_9000"], "config.dataset"),
    "unknown config key": (["--config.learnin_rate=0.1"], "learnin_rate"),
    "missing config file": (["--config=configs/no_such_config.py"], "--config"),
    "unproducible image size": (["--config.image_size=48"], "image_size"),
    "negative step count": (["--config.num_train_steps=-5"], "num_train_steps"),
    "batch not divisible by devices": (["--config.batch_size=15"], "batch_size"),
    "catalog data not prepared": (
        ["--config.dataset=cifar10", "--config.data_dir={empty}"],
        "cnngen_jax.commands.prepare --dataset=cifar10",
    ),
    "checkpoint of another architecture": (["--config.model.g_width=16"], "model.g_width: 8 -> 16"),
    "unknown loss": (["--config.loss=wgan"], "config.loss"),
    "conditional model on unlabelled data": (
        ["--config.model.conditioning=projection", "--config.dataset=celeb_a"],
        "needs class labels",
    ),
    "unknown preset": (["--config=configs/dcgan.py:imagenet"], "unknown preset 'imagenet'"),
}  # fmt: skip


@pytest.fixture(scope="module")
def bad_input_runs(finished_run, tmp_path_factory, data_dir, cache_dir) -> dict:
    """Every BAD_INPUTS case, each on its own copy of the finished run, started all at once:
    they spend their seconds starting Python and JAX, which overlap. Per case: the workdir, its
    snapshot before, the result and the seconds it took."""
    started = {}
    for case, (overrides, _) in BAD_INPUTS.items():
        tmp_path = tmp_path_factory.mktemp("bad_input")
        workdir = copy_run(finished_run, tmp_path)
        args = main_args(workdir, data_dir, cache_dir) + [
            arg.format(empty=tmp_path / "empty_tfds") for arg in overrides
        ]
        started[case] = (workdir, snapshot(workdir), start_main(args, devices=2), time.time())
    return {
        case: (workdir, before, finish(process), time.time() - start)
        for case, (workdir, before, process, start) in started.items()
    }


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_clear_message_and_changes_nothing(case, bad_input_runs):
    _, expected = BAD_INPUTS[case]
    workdir, before, result, seconds = bad_input_runs[case]
    assert seconds < 60  # all cases at once, sharing the cores
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in result.stderr, result.stderr[-3000:]
    assert snapshot(workdir) == before


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    finished_run, tmp_path, data_dir, cache_dir
):
    workdir = copy_run(finished_run, tmp_path)
    huge = ["--config.optimizer.g_learning_rate=1e35", "--config.optimizer.d_learning_rate=1e35"]
    result = run_main(main_args(workdir, data_dir, cache_dir, num_train_steps=30) + huge)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "non-finite" in result.stderr and "Traceback" not in result.stderr
    assert "6" in os.listdir(workdir / "checkpoints")
    resumed = run_main(main_args(workdir, data_dir, cache_dir, num_train_steps=8))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed" in resumed.stdout


def test_missing_config_file_alone_is_reported_without_a_traceback(tmp_path):
    # config_flags defers a failed load to the config's first use; the flag parser forces it.
    result = run_main(["--config=configs/no_such_config.py", f"--workdir={tmp_path / 'run'}"])
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.startswith("error: cannot load the file given by --config")
    assert not (tmp_path / "run").exists()
