"""Embedded digits, the global-batch pipeline, and the TFDS catalog path through mock_data."""

import gzip
import time

import grain
import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnngen_jax import data
from cnngen_jax.data import DatasetSpec, decoded, order, pipeline
from cnngen_jax.errors import UserError

INDEX_SPEC = DatasetSpec("fake", "train", "test", 1, 1000)


class IndexSource:
    """A source whose label is the example's index, so batches can be traced back."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return {"image": np.full((4, 4, 1), i % 256, np.uint8), "label": i}


def labels(source, *, batch, rows, steps, seed=0):
    iterator = pipeline.train_iterator(
        source, INDEX_SPEC, image_size=4, global_batch_size=batch, rows=rows, seed=seed,
        num_threads=1, prefetch=2,
    )  # fmt: skip
    return [next(iterator)["label"] for _ in range(steps)]


def test_digits_are_prepared_offline_with_labels(data_dir):
    train = data.open_source("digits", "train", data_dir)
    test = data.open_source("digits", "test", data_dir)
    assert (len(train), len(test)) == (1500, 297)
    examples = [train[i] for i in range(300)]
    assert {int(e["label"]) for e in examples} == set(range(10))
    images = np.stack([e["image"] for e in examples])
    assert images.shape == (300, 8, 8, 1) and images.dtype == np.uint8 and images.max() == 255


@pytest.mark.parametrize("num_examples", [48, 37])  # whole batches per epoch, or not
def test_global_batch_order_does_not_depend_on_process_count(num_examples):
    source, batch, steps = IndexSource(num_examples), 12, 7
    single = labels(source, batch=batch, rows=slice(0, batch), steps=steps)
    for processes in (2, 3, 4):
        per = batch // processes
        shards = [
            labels(source, batch=batch, rows=slice(p * per, (p + 1) * per), steps=steps)
            for p in range(processes)
        ]
        for step in range(steps):
            parts = [shard[step] for shard in shards]
            np.testing.assert_array_equal(np.concatenate(parts), single[step])
            if num_examples % batch == 0:  # else a batch may span two epochs and repeat an example
                assert len(set(np.concatenate(parts).tolist())) == batch  # disjoint shards


def test_each_epoch_is_a_fresh_permutation_and_depends_on_seed():
    source = IndexSource(40)
    stream = np.concatenate(labels(source, batch=8, rows=slice(0, 8), steps=10))
    first, second = stream[:40], stream[40:80]
    assert sorted(first) == list(range(40)) and sorted(second) == list(range(40))
    assert not np.array_equal(first, second)
    other_seed = np.concatenate(labels(source, batch=8, rows=slice(0, 8), steps=5, seed=1))
    assert not np.array_equal(stream[:40], other_seed)


def test_iterator_state_resumes_exactly():
    source = IndexSource(30)
    make = lambda: pipeline.train_iterator(  # noqa: E731
        source, INDEX_SPEC, image_size=4, global_batch_size=8, rows=slice(0, 8), seed=3,
        num_threads=2, prefetch=4,
    )  # fmt: skip
    iterator = make()
    for _ in range(5):
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator)["label"] for _ in range(4)]
    resumed = make()
    resumed.set_state(state)
    for want in expected:
        np.testing.assert_array_equal(next(resumed)["label"], want)


def test_eval_batches_cover_the_split_once():
    source = IndexSource(21)
    seen = []
    for batch in pipeline.eval_batches(
        source, INDEX_SPEC, image_size=4, global_batch_size=8, rows=slice(0, 8)
    ):
        seen.extend(batch["label"][batch["mask"] > 0].tolist())
    assert seen == list(range(21))


def test_preprocess_resizes_and_scales_to_unit_range(data_dir):
    source = data.open_source("digits", "train", data_dir)
    spec = data.get_spec("digits")
    batch = pipeline.Preprocess(source, spec, 32)(np.arange(16))
    assert batch["image"].shape == (16, 32, 32, 1) and batch["image"].dtype == np.float32
    assert batch["image"].min() == -1.0 and 0.9 < batch["image"].max() <= 1.0
    assert batch["label"].dtype == np.int32


@pytest.mark.parametrize(
    "name,image_size,channels,has_labels",
    [("mnist", 16, 1, True), ("fashion_mnist", 32, 1, True), ("cifar10", 16, 3, True),
     ("celeb_a", 32, 3, False)],
)  # fmt: skip
def test_catalog_datasets_through_mock_data(tmp_path, name, image_size, channels, has_labels):
    spec = data.get_spec(name)
    with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_CODE):
        source = data.open_source(name, spec.train_split, str(tmp_path))
        iterator = pipeline.train_iterator(
            source, spec, image_size=image_size, global_batch_size=8, rows=slice(0, 8), seed=0,
            num_threads=1, prefetch=1,
        )  # fmt: skip
        batch = next(iterator)
    assert batch["image"].shape == (8, image_size, image_size, channels)
    assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
    assert ("label" in batch) == has_labels


def test_unprepared_catalog_dataset_fails_fast_with_the_prepare_command(tmp_path):
    started = time.perf_counter()
    with pytest.raises(UserError) as error:
        data.open_source("cifar10", "train", str(tmp_path))
    assert time.perf_counter() - started < 10
    assert f"python -m cnngen_jax.commands.prepare --dataset=cifar10 --data_dir={tmp_path}" in str(
        error.value
    )


def test_unknown_dataset_is_a_user_error():
    with pytest.raises(UserError, match="config.dataset"):
        data.get_spec("imagenet_2099")


def test_mnist5k_is_prepared_offline_from_the_file_with_a_stable_balanced_split(tmp_path):
    from cnngen_jax.data import mnist5k

    with gzip.open(mnist5k.source_file(), "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    data.ensure_prepared("mnist5k", str(tmp_path))
    for split, rank in (("train", slice(0, 400)), ("test", slice(400, 500))):
        source = data.open_source("mnist5k", split, str(tmp_path))
        # The rule: of each class's 500 rows (the file is ordered by class), rows 0-399 train
        # and 400-499 test, in file order.
        want = np.concatenate([rows[rows[:, -1] == c][rank] for c in range(10)])
        got_images = np.stack([np.asarray(source[i]["image"]) for i in range(len(source))])
        got_labels = np.array([int(source[i]["label"]) for i in range(len(source))])
        assert got_images.shape == (len(want), 28, 28, 1) and got_images.dtype == np.uint8
        got = np.concatenate([got_images.reshape(len(want), -1), got_labels[:, None]], axis=1)
        # TFDS stores examples in the order of their keys' hashes: compare as sets of rows.
        np.testing.assert_array_equal(np.unique(got, axis=0), np.unique(want, axis=0))
        assert np.bincount(got_labels).tolist() == [rank.stop - rank.start] * 10


def test_mnist5k_without_its_file_says_what_to_install(tmp_path, monkeypatch):
    from cnngen_jax.data import mnist5k

    monkeypatch.setattr(mnist5k, "DISTRIBUTION", "no-such-distribution")
    with pytest.raises(UserError, match=r"mnist5k.*pip install no-such-distribution"):
        data.ensure_prepared("mnist5k", str(tmp_path))
    assert not any(tmp_path.iterdir())  # nothing prepared, nothing downloaded


def per_record_batch(source, spec, image_size, batch, rows, seed, position):
    """Global batch `position` as the per-record pipeline reads it: Grain's own shuffled
    indices, each example decoded by `Preprocess`, photographs cropped where the seed says."""
    shuffled = grain.MapDataset.range(len(source)).shuffle(seed=seed).repeat()
    indices = shuffled.batch(batch, drop_remainder=True)[position][rows]
    crops = None
    if spec.variable_size:
        crops = np.random.default_rng((seed, position)).random((batch, 2))[rows]
    return pipeline.Preprocess(source, spec, image_size)(indices, crops)


@pytest.mark.parametrize(
    ("name", "image_size", "batch", "resident", "batches_per_step"),
    [("digits", 16, 64, True, 1), ("digits", 16, 64, True, 2), ("digits", 16, 64, False, 1),
     ("photos", 16, 8, False, 1), ("photos", 32, 8, False, 2)],
)  # fmt: skip
def test_batches_and_resumption_are_the_per_record_pipelines(
    data_dir, name, image_size, batch, resident, batches_per_step
):
    """Across epochs (1,500 digits in batches of 64; 7 photographs in batches of 8), a process's
    rows only, then resumed from the iterator's state."""
    spec, source = data.get_spec(name), data.open_source(name, "train", data_dir)
    split = None
    if resident:
        split = decoded.decoded_split(name, "train", data_dir, image_size, write=False)
    rows, seed = slice(batch // 4, batch // 2), 11
    make = lambda: pipeline.train_iterator(  # noqa: E731
        source, spec, image_size=image_size, global_batch_size=batch, rows=rows, seed=seed,
        num_threads=2, prefetch=2, batches_per_step=batches_per_step, decoded=split,
    )  # fmt: skip
    want = [per_record_batch(source, spec, image_size, batch, rows, seed, g) for g in range(30)]
    if batches_per_step > 1:  # k consecutive batches stacked
        k = batches_per_step
        stacks = [want[i : i + k] for i in range(0, len(want), k)]
        want = [{key: np.stack([b[key] for b in stack]) for key in stack[0]} for stack in stacks]
    iterator = make()
    got = [next(iterator) for _ in range(len(want) - 5)]
    state = iterator.get_state()
    assert state == {"next_index": len(got)}
    resumed = make()
    resumed.set_state(state)
    got += [next(resumed) for _ in range(5)]
    for want_batch, got_batch in zip(want, got, strict=True):
        assert got_batch.keys() == want_batch.keys()
        for key, value in want_batch.items():
            assert got_batch[key].dtype == value.dtype
            np.testing.assert_array_equal(got_batch[key], value)


@pytest.mark.parametrize(
    ("num_examples", "batch", "seed"),
    [(1, 4, 9), (7, 8, 0), (37, 12, 5), (1500, 64, 2**32 - 1), (65_537, 100, 3),
     (70_001, 100, 123)],
)  # fmt: skip
def test_global_batches_are_grains_across_epochs(num_examples, batch, seed):
    """Seeds wrap at 2**32 as Grain's; 65,537 = 4^8 + 1 is a size whose cipher block is too
    short, where Grain reads some examples twice and the order must still be its."""
    shuffled = grain.MapDataset.range(num_examples).shuffle(seed=seed).repeat()
    grains = shuffled.batch(batch, drop_remainder=True)
    ours = order.GlobalBatches(num_examples, batch, seed)
    first = max(0, num_examples // batch - 1)
    for position in range(first, first + 4):
        np.testing.assert_array_equal(ours(position), grains[position])


def test_photographs_are_kept_once_decoded_within_the_bound(data_dir):
    source = data.open_source("photos", "train", data_dir)
    reads = []

    class Counting:
        def __len__(self):
            return len(source)

        def __getitem__(self, index):
            reads.append(index)
            return source[index]

    sizes = [np.asarray(source[i]["image"]).nbytes for i in range(len(source))]
    kept = pipeline._Kept(Counting(), "image", max_bytes=sizes[0] + sizes[1])
    for _ in range(3):
        for index in range(len(source)):
            np.testing.assert_array_equal(kept[index]["image"], source[index]["image"])
    assert sorted(set(reads)) == list(range(len(source)))
    assert reads.count(0) == reads.count(1) == 1 and reads.count(2) == 3
