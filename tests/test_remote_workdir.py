"""A workdir (and caches) on a non-local file system: gs:// through epath, backed here by a local
folder (tests/fake_gcs.py says how, and what it keeps of object-store semantics)."""

import json
import os
import shutil
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from cnngen_jax import checkpoint, files, writers
from cnngen_jax.errors import UserError
from cnngen_jax.metrics import domain, npz_files
from tests import fake_gcs as fake_gcs_lib
from tests.conftest import one_device, tiny_config


@pytest.fixture
def fake_gcs(tmp_path, monkeypatch):
    yield from fake_gcs_lib.serve(tmp_path, monkeypatch)


def test_path_expands_home_for_local_paths_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert str(files.path("~/run")) == str(tmp_path / "run")
    assert str(files.path("runs/a")) == str(tmp_path / "runs" / "a")  # absolute: Orbax needs it
    assert str(files.path(tmp_path / "x")) == str(tmp_path / "x")  # os.PathLike too
    assert str(files.path("gs://bucket/~/run")) == "gs://bucket/~/run"
    assert files.is_remote("gs://bucket/run") and not files.is_remote(str(tmp_path))
    with pytest.raises(UserError, match=r"--workdir=memory://run: unknown file system memory://"):
        files.path("memory://run", "--workdir")


def test_the_fake_reports_local_file_calls_on_gs_urls(fake_gcs):
    url = fake_gcs.url("run")
    with pytest.raises(FileNotFoundError):
        open(os.path.join(url, "config.json"), "w")  # noqa: SIM115  (what a call site must not do)
    os.makedirs(os.path.join(url, "samples"))
    assert fake_gcs.strays() == ["gs:", "gs:/bucket", "gs:/bucket/run", "gs:/bucket/run/samples"]
    shutil.rmtree(fake_gcs.cwd / "gs:")
    with pytest.raises(NotImplementedError, match="object stores cannot append"):
        files.path(url + "/log.txt").open("a")
    files.path(url + "/a/b.txt").write_text("x")  # no directories needed, as on GCS
    assert (fake_gcs.root / "bucket" / "run" / "a" / "b.txt").read_text() == "x"


@pytest.fixture(params=["local", "gs"])
def root(request, tmp_path):
    """A directory URL on either file system."""
    if request.param == "local":
        return str(tmp_path / "local")
    return request.getfixturevalue("fake_gcs").url("root")


def test_writes_are_whole_and_reads_name_a_torn_file(root):
    target = f"{root}/sub/config.json"
    files.write_json(target, {"a": 1})
    files.write_json(target, {"a": 2})  # replaces
    assert files.read_json(target) == {"a": 2}
    assert sorted(p.name for p in files.path(f"{root}/sub").iterdir()) == ["config.json"]
    files.path(target).write_text('{"a": ')  # as a process killed mid-write would leave it
    with pytest.raises(UserError, match=r"config.json is not valid JSON .*torn.*; train again"):
        files.read_json(target, hint="train again")
    with pytest.raises(UserError, match="missing.json does not exist; pass a workdir"):
        files.read_json(f"{root}/missing.json", hint="pass a workdir")


def test_append_line_keeps_earlier_lines_and_jsonl_drops_only_a_torn_last_line(root):
    target = f"{root}/log.jsonl"
    assert files.read_jsonl(target) == []
    for step in range(3):
        files.append_line(target, json.dumps({"step": step}))
    assert files.read_jsonl(target) == [{"step": 0}, {"step": 1}, {"step": 2}]
    files.path(target).write_text('{"step": 0}\n{"step": 1}\n{"st')
    assert files.read_jsonl(target, torn_last_ok=True) == [{"step": 0}, {"step": 1}]
    with pytest.raises(UserError, match="log.jsonl line 3 is not valid JSON"):
        files.read_jsonl(target)
    files.append_line(target, json.dumps({"step": 2}))  # after the torn line, not glued to it
    assert files.read_text(target) == '{"step": 0}\n{"step": 1}\n{"st\n{"step": 2}\n'
    with pytest.raises(UserError, match="line 3"):  # torn in the middle: not an unfinished append
        files.read_jsonl(target, torn_last_ok=True)


def test_npz_round_trip_and_a_truncated_npz_is_a_value_error(root):
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b/c": np.asarray("text")}
    npz_files.write_atomically(f"{root}/cache/x.npz", arrays)
    read = npz_files.read(f"{root}/cache/x.npz")
    assert set(read) == {"a", "b/c"} and np.array_equal(read["a"], arrays["a"])
    data = files.read_bytes(f"{root}/cache/x.npz")
    files.write_bytes(f"{root}/cache/x.npz", data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a complete .npz"):
        npz_files.read(f"{root}/cache/x.npz")


def test_copy_tree_uploads_a_local_build(tmp_path, root):
    build = tmp_path / "build"
    (build / "a" / "b").mkdir(parents=True)
    (build / "top.txt").write_text("1")
    (build / "a" / "b" / "deep.bin").write_bytes(b"\x00\x01")
    written = files.copy_tree(build, f"{root}/out")
    assert sorted(str(p) for p in written) == [f"{root}/out/a/b/deep.bin", f"{root}/out/top.txt"]
    assert files.read_bytes(f"{root}/out/a/b/deep.bin") == b"\x00\x01"
    assert files.read_text(f"{root}/out/top.txt") == "1"


def _records(data: bytes) -> list[bytes]:
    """The records of a TFRecord (event) file, checking its framing."""
    records, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        records.append(data[offset + 12 : offset + 12 + length])
        offset += 12 + length + 4
    assert offset == len(data), "a record cut short"
    return records


def _events(directory) -> list:
    from tensorboardX.proto import event_pb2

    events = []
    for path in sorted(directory.iterdir()):
        assert "tfevents" in path.name
        for record in _records(path.read_bytes()):
            event = event_pb2.Event()
            event.ParseFromString(record)
            events.append(event)
    return events


def _tags(events) -> dict[str, list[int]]:
    tags = {}
    for event in events:
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_run_writer_writes_metrics_grids_and_events_to_gcs(fake_gcs):
    workdir = fake_gcs.url("run")
    writer = writers.RunWriter(workdir, enabled=True)
    for step in (1, 2, 3):
        writer.write_scalars(step, {"loss": float(step)})
    writer.write_images(3, {"samples": np.zeros((4, 8, 8, 1), np.float32)})
    writer.write_text("parameters", "a table")
    writer.forget_after(2)
    writer.write_scalars(3, {"loss": 30.0})
    writer.close()

    local = fake_gcs.local(workdir)
    lines = (local / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"step": 1, "loss": 1.0},
        {"step": 2, "loss": 2.0},
        {"step": 3, "loss": 30.0},
    ]
    with Image.open(local / "samples" / "samples_0000003.png") as grid:
        assert grid.format == "PNG" and grid.size == (22, 22)
    tags = _tags(_events(local / "tensorboard"))
    assert tags["loss"] == [1, 2, 3, 3] and tags["samples"] == [3]
    assert "parameters/text_summary" in tags


def test_remote_event_files_continue_in_new_segments(fake_gcs, monkeypatch):
    monkeypatch.setattr(writers, "EVENT_SEGMENT_BYTES", 200)
    writer = writers.RunWriter(fake_gcs.url("run"), enabled=True)
    for step in range(20):
        writer.write_scalars(step, {"loss": float(step)})
    writer.close()
    directory = fake_gcs.local(fake_gcs.url("run")) / "tensorboard"
    segments = sorted(p.name for p in directory.iterdir())
    # Records of about 40 bytes flushed one by one: continued at least twice past 200 bytes (how
    # many times depends on the host name and the clock in the records).
    assert len(segments) >= 3 and segments[1:3] == [segments[0] + ".0001", segments[0] + ".0002"]
    assert _tags(_events(directory))["loss"] == list(range(20))  # each segment whole, in order


def test_run_writer_on_a_local_workdir_expands_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    writer = writers.RunWriter("~/run", enabled=True)
    writer.write_scalars(1, {"loss": 1.0})
    writer.close()
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    assert any((tmp_path / "run" / "tensorboard").iterdir())


def _state(scale: float = 1.0) -> dict:
    return {"params": {"w": jnp.arange(6.0).reshape(2, 3) * scale}, "step": jnp.int32(3)}


def test_checkpoints_save_restore_and_keep_the_last_ones_on_gcs(fake_gcs):
    directory = fake_gcs.url("run/checkpoints")
    config = tiny_config()
    saver = checkpoint.CheckpointWriter(directory, max_to_keep=2)
    for step in (1, 2, 3):
        saver.save(step, _state(step), {"position": step}, config)
    saver.close()
    assert sorted(os.listdir(fake_gcs.local(directory))) == ["2", "3"]

    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _state())
    restored = checkpoint.restore_latest(directory, abstract, config)
    assert restored.step == 3 and restored.data_state == {"position": 3}
    np.testing.assert_array_equal(restored.state["params"]["w"], _state(3)["params"]["w"])
    assert checkpoint.restore_latest(directory, abstract, config, step=2).data_state == {
        "position": 2
    }
    with pytest.raises(UserError, match="no complete checkpoint of step 1"):
        checkpoint.restore_latest(directory, abstract, config, step=1)
    wrong = {**abstract, "params": {"w": jax.ShapeDtypeStruct((3, 3), jnp.float32)}}
    with pytest.raises(UserError, match=r"different architecture .*params/w: \(2, 3\) -> \(3, 3\)"):
        checkpoint.restore_latest(directory, wrong, config)

    # config.init_from: the workdir, its checkpoints directory or one step of it
    source, arrays = checkpoint.read_state(fake_gcs.url("run"))
    assert source == f"{directory} step 3"
    np.testing.assert_array_equal(arrays["params/w"], _state(3)["params"]["w"])
    source, arrays = checkpoint.read_state(f"{directory}/2")
    assert source == f"{directory} step 2"
    with pytest.raises(UserError, match="does not exist"):
        checkpoint.read_state(fake_gcs.url("elsewhere"))
    assert checkpoint.restore_latest(fake_gcs.url("new/checkpoints"), abstract, config) is None


def test_domain_classifier_cache_on_gcs(fake_gcs):
    cache = fake_gcs.url("cache")
    settings = domain.DEFAULT_SETTINGS
    path = domain.cache_path(cache, "digits", 16, settings)
    assert path.startswith(f"{cache}/domain_classifier/digits-16px-")
    variables = {"params": {"Dense_0": {"kernel": np.ones((2, 3), np.float32)}}}
    sha256 = domain._save(path, variables, 0.5, settings)
    # Found in the cache: loaded, not trained (no data directory is needed).
    trained = domain.load_or_train("digits", 16, data_dir="", cache_dir=cache)
    assert trained.sha256 == sha256 and trained.test_accuracy == 0.5 and trained.path == path
    np.testing.assert_array_equal(trained.variables["params"]["Dense_0"]["kernel"], 1.0)
    entries = npz_files.read(path)
    entries["params/Dense_0/kernel"] = np.zeros((2, 3), np.float32)
    npz_files.write_atomically(path, entries)
    with pytest.raises(UserError, match="does not match its stored hash"):
        domain.load_or_train("digits", 16, data_dir="", cache_dir=cache)


def test_train_resume_sample_and_evaluate_with_a_gcs_workdir(fake_gcs, data_dir, cache_dir):
    from cnngen_jax import inference, sampling, train

    workdir = fake_gcs.url("run")
    eval_cache = fake_gcs.url("eval_cache")
    overrides = {
        "evals.sample_quality.num_samples": 40,
        "evals.sample_quality.cache_dir": eval_cache,
    }
    config = tiny_config(data_dir, cache_dir, family="dcgan", num_train_steps=2, **overrides)
    with one_device():
        train.train_and_evaluate(config, workdir)
        longer = tiny_config(data_dir, cache_dir, family="dcgan", num_train_steps=4, **overrides)
        train.train_and_evaluate(longer, workdir)  # resumes from step 2

    local = fake_gcs.local(workdir)
    assert json.loads((local / "config.json").read_text())["num_train_steps"] == 4
    steps = [
        json.loads(line)["step"] for line in (local / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 4
    assert sorted(os.listdir(local / "checkpoints"))[-1] == "4"
    assert any((local / "samples").iterdir()) and any((local / "tensorboard").iterdir())

    run = inference.load_run(workdir)
    assert run.step == 4
    pictures = sampling.draw(run, 16, seed=0, interpolation_steps=0)
    assert pictures["samples"].shape == (16, 16, 16, 1)
    out = fake_gcs.url("samples_out")
    written = sampling.sample(workdir, out, num_images=16, interpolation_steps=0)
    assert written and all(files.path(path).exists() for path in written)
    meta = json.loads((fake_gcs.local(out) / "metadata.json").read_text())
    assert meta["workdir"] == workdir and meta["step"] == 4
    export = fake_gcs.url("export")
    sampling.sample(workdir, export, num_images=16, export=True)
    assert len(list(fake_gcs.local(export).rglob("*.png"))) == 16
    assert list(fake_gcs.local(export).rglob("dataset_info.json"))
    assert list(fake_gcs.local(export).rglob("*.array_record*"))

    result = inference.evaluate_run(workdir)
    assert result["step"] == 4
    lines = (local / "evaluation.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 4
    assert any(fake_gcs.local(eval_cache).rglob("*.npz"))  # reference stats, domain classifier
