"""The training feeds: Grain's batch order recomputed, resident data read in exactly the host
pipeline's order on any mesh, several steps per dispatch equal to one, the decoded-data cache
never trusted when broken, and the placement settings' errors."""

import json

import jax
import numpy as np
import pytest

from cnngen_jax import data, parallel, train
from cnngen_jax.data import decoded, feed, order, pipeline
from cnngen_jax.errors import UserError
from tests.conftest import read_metrics, tiny_config, without_evaluation


@pytest.mark.parametrize("num_examples", [1, 2, 7, 37, 1500, 65_537])
def test_the_devices_compute_the_same_epoch_orders(num_examples):
    """The XLA program the resident feed runs, against the NumPy order (itself Grain's)."""
    sharding = parallel.replicated(parallel.make_mesh())
    epochs = range(2**32 - 2, 2**32 + 2)  # the per-epoch seed wraps
    got = order.epoch_orders(num_examples, 11, epochs, sharding)
    want = [order.epoch_permutation(num_examples, 11, epoch) for epoch in epochs]
    np.testing.assert_array_equal(got, np.stack(want))
    assert got.sharding == sharding


def _feeds(data_dir, mesh, *, batches_per_step, steps_per_dispatch, sharded, image_size=16):
    spec, source = data.get_spec("digits"), data.open_source("digits", "train", data_dir)
    layout = feed.Layout(mesh, 16, batches_per_step, steps_per_dispatch)
    iterator = pipeline.train_iterator(
        source, spec, image_size=image_size, global_batch_size=16,
        rows=parallel.process_rows(mesh, 16), seed=3, num_threads=1, prefetch=1,
        batches_per_step=batches_per_step,
    )  # fmt: skip
    split = decoded.decoded_split("digits", "train", data_dir, image_size)
    return feed.HostFeed(iterator, layout), feed.DeviceFeed(split, layout, 3, sharded)


@pytest.mark.parametrize(
    ("devices", "batches_per_step", "steps_per_dispatch", "sharded"),
    [(1, 1, 1, False), (8, 2, 3, False), (8, 1, 4, True), (8, 3, 1, True)],
)
def test_resident_batches_are_the_host_pipelines(
    data_dir, devices, batches_per_step, steps_per_dispatch, sharded
):
    """Over 150 steps of 16 (1,500 digits: several epochs, batches across their borders)."""
    mesh = parallel.make_mesh(jax.devices()[:devices])
    host, device = _feeds(
        data_dir, mesh, batches_per_step=batches_per_step,
        steps_per_dispatch=steps_per_dispatch, sharded=sharded,
    )  # fmt: skip
    both = jax.jit(
        lambda host_inputs, device_inputs: [
            (host.batch(host_inputs, i), device.batch(device_inputs, i))
            for i in range(steps_per_dispatch)
        ]
    )
    for _ in range(-(-150 // (steps_per_dispatch * batches_per_step))):
        for want, got in both(host.next_inputs(), device.next_inputs()):
            assert got["image"].sharding.is_equivalent_to(want["image"].sharding, 4)
            np.testing.assert_array_equal(got["image"], want["image"])
            np.testing.assert_array_equal(got["label"], want["label"])
    assert device.get_state() == host.get_state()


def test_resident_order_across_blocks_long_dispatches_and_resumption():
    """37 examples, dispatches of 4 x 16 (longer than an epoch), 40 of them (the epoch orders
    recomputed twice on the devices), and a fresh resident feed resumed from the host
    iterator's state half way: every label the host pipeline's."""
    n, mesh = 37, parallel.make_mesh()
    spec = data.DatasetSpec("fake", "train", "test", 1, 1000)
    source = [{"image": np.zeros((4, 4, 1), np.uint8), "label": i} for i in range(n)]
    split = decoded.DecodedSplit(np.zeros((n, 4, 4, 1), np.uint8), np.arange(n, dtype=np.int32))
    layout = feed.Layout(mesh, 16, 1, 4)
    iterator = pipeline.train_iterator(
        source, spec, image_size=4, global_batch_size=16, rows=slice(0, 16), seed=2**32 - 9,
        num_threads=1, prefetch=1,
    )  # fmt: skip
    host = feed.HostFeed(iterator, layout)
    device = feed.DeviceFeed(split, layout, 2**32 - 9, sharded=False)
    labels = jax.jit(lambda inputs: [device.batch(inputs, i)["label"] for i in range(4)])
    for dispatch in range(40):
        if dispatch == 20:
            device = feed.DeviceFeed(split, layout, 2**32 - 9, sharded=False)
            device.set_state(host.get_state())
        want = np.asarray(host.next_inputs()["label"])
        np.testing.assert_array_equal(np.stack(labels(device.next_inputs())), want)


def _train(tmp_path, name, data_dir, cache_dir, **overrides):
    config = tiny_config(data_dir, cache_dir, num_train_steps=8, sample_every_steps=4,
                         checkpoint_every_steps=4, log_every_steps=4, **overrides)  # fmt: skip
    workdir = tmp_path / name
    train.train_and_evaluate(config, str(workdir))
    return workdir


def _final_state(workdir):
    from cnngen_jax import inference

    run = inference.load_run(str(workdir))
    return jax.tree.leaves(parallel.to_host(run.state))


def test_resident_data_in_dispatches_of_four_trains_the_host_pipelines_run(
    tmp_path, data_dir, cache_dir
):
    """Host placement one step a dispatch, against resident data four steps a dispatch: the
    same metrics at every logged step and the same final weights (the batches themselves are
    compared above)."""
    host = _train(tmp_path, "host", data_dir, cache_dir, data_placement="host")
    device = _train(
        tmp_path, "k4", data_dir, cache_dir, data_placement="device", steps_per_dispatch=4
    )
    reference = read_metrics(host)
    assert [m["step"] for m in reference if "d_loss" in m] == [4, 8]
    for want, got in zip(reference, read_metrics(device), strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    for want, got in zip(_final_state(host), _final_state(device), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_broken_or_foreign_cache_is_rebuilt_not_trusted(tmp_path, data_dir, capsys):
    import shutil

    local = tmp_path / "data"
    shutil.copytree(data_dir, local, ignore=shutil.ignore_patterns("cnngen_decoded"))
    fresh = decoded.decoded_split("digits", "train", str(local), 16)
    (folder,) = (local / "cnngen_decoded" / "digits").iterdir()
    images = folder / "images.npy"
    size = images.stat().st_size
    with open(images, "r+b") as handle:  # truncated mid-array
        handle.truncate(size - 100)
    again = decoded.decoded_split("digits", "train", str(local), 16)
    assert "rebuilding the decoded-data cache" in capsys.readouterr().out
    np.testing.assert_array_equal(again.images, fresh.images)
    assert images.stat().st_size == size  # rewritten whole
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format_version": 0}))
    decoded.decoded_split("digits", "train", str(local), 16)
    assert "meta.json describes other data" in capsys.readouterr().out
    (folder / "meta.json").write_text('{"format_version": ')  # torn
    decoded.decoded_split("digits", "train", str(local), 16)
    assert "rebuilding the decoded-data cache" in capsys.readouterr().out
    cached = decoded.decoded_split("digits", "train", str(local), 16)
    assert capsys.readouterr().out == "" and isinstance(cached.images, np.memmap)
    np.testing.assert_array_equal(cached.labels, fresh.labels)


def test_resuming_between_dispatches_is_refused_and_changes_nothing(tmp_path, data_dir):
    config = without_evaluation(tiny_config(data_dir, num_train_steps=3))
    workdir = tmp_path / "run"
    train.train_and_evaluate(config, str(workdir))
    before = sorted((p.relative_to(workdir), p.stat().st_size) for p in workdir.rglob("*"))
    config = without_evaluation(
        tiny_config(data_dir, num_train_steps=8, steps_per_dispatch=2, log_every_steps=2,
                    sample_every_steps=4, checkpoint_every_steps=4)
    )  # fmt: skip
    with pytest.raises(UserError, match="at step 3, not a multiple of steps_per_dispatch=2"):
        train.train_and_evaluate(config, str(workdir))
    assert sorted((p.relative_to(workdir), p.stat().st_size) for p in workdir.rglob("*")) == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"steps_per_dispatch": 0}, "steps_per_dispatch=0 must be a whole number >= 1"),
        ({"steps_per_dispatch": 4}, "log_every_steps=1 is not a multiple of steps_per_dispatch=4"),
        (
            {"steps_per_dispatch": 3, "log_every_steps": 3, "num_train_steps": 7},
            "num_train_steps=7 is not a multiple of steps_per_dispatch=3",
        ),
        ({"data_placement": "gpu"}, "data_placement='gpu' is not one of"),
    ],
)
def test_dispatch_and_placement_settings_are_checked(tmp_path, data_dir, overrides, message):
    config = tiny_config(data_dir, **overrides)
    with pytest.raises(UserError, match=message):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_device_placement_that_cannot_hold_the_split_names_the_fix(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(feed, "device_memory", lambda mesh: 100_000)
    config = tiny_config(data_dir, data_placement="device")
    with pytest.raises(UserError, match=r"needs 0 MiB.*set --config.data_placement=auto or host"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    mesh = parallel.make_mesh()
    assert feed.choose_placement("auto", "digits", 1500, 16, mesh) == "host"
    monkeypatch.setattr(feed, "device_memory", lambda mesh: 1_000_000)  # 1/8 of it fits
    assert feed.choose_placement("auto", "digits", 1500, 16, mesh) == "device-sharded"


def test_photographs_of_their_own_sizes_stay_on_the_host(data_dir):
    mesh = parallel.make_mesh()
    assert feed.choose_placement("auto", "photos", 10, 64, mesh) == "host"
    with pytest.raises(UserError, match="photographs of their own sizes"):
        feed.choose_placement("device", "photos", 10, 64, mesh)


@pytest.mark.e2e
def test_seeds_side_by_side_are_the_same_under_every_dispatch(tmp_path, data_dir, cache_dir):
    seeds = {"num_seeds": 2, "data_placement": "host"}
    host = _train(tmp_path, "host", data_dir, cache_dir, **seeds)
    dispatched = _train(
        tmp_path, "device_k2", data_dir, cache_dir, **{**seeds, "data_placement": "device"},
        steps_per_dispatch=2,
    )  # fmt: skip
    for want, got in zip(read_metrics(host), read_metrics(dispatched), strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
