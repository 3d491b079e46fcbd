"""`python -m cnngen_jax.commands.sample` (`cnngen_jax.sampling`) on tiny runs: determinism
under a seed, conditional pictures, the interpolation paths, and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from cnngen_jax import data, export, inference, pixels, train
from cnngen_jax.errors import UserError
from cnngen_jax.sampling import lerp, sample, slerp
from tests.conftest import ROOT, one_device, output_dir, tiny_config, without_evaluation


def test_a_seed_gives_the_same_images_and_another_seed_others(tiny_runs, tmp_path):
    written = sample(tiny_runs["vae"], str(tmp_path / "a"), num_images=9, seed=5)
    assert {p.rsplit("/", 1)[1] for p in written} == {
        "samples.png", "interpolation_linear.png", "interpolation_slerp.png", "samples.npy",
        "metadata.json",
    }  # fmt: skip
    sample(tiny_runs["vae"], str(tmp_path / "b"), num_images=9, seed=5)
    sample(tiny_runs["vae"], str(tmp_path / "c"), num_images=9, seed=6)
    a, b, c = (np.load(tmp_path / name / "samples.npy") for name in "abc")
    assert a.shape == (9, 16, 16, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    metadata = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert metadata["step"] == 2 and metadata["seed"] == 5


def test_a_conditional_model_draws_the_classes_asked(tiny_runs, tmp_path):
    sample(tiny_runs["cdcgan"], str(tmp_path / "all"), num_images=10, seed=0, interpolation_steps=3)
    sample(tiny_runs["cdcgan"], str(tmp_path / "threes"), num_images=10, seed=0, labels=[3])
    assert (tmp_path / "all" / "class_grid.png").is_file()
    every_class, threes = (np.load(tmp_path / n / "samples.npy") for n in ("all", "threes"))
    # The same latents: image 3 is class 3 in both; the others change with their class.
    np.testing.assert_array_equal(every_class[3], threes[3])
    assert not np.array_equal(every_class[4], threes[4])


def test_slerp_keeps_to_the_great_circle_and_lerp_to_the_chord():
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(2, 3, 5))
    end *= np.linalg.norm(start, axis=1, keepdims=True) / np.linalg.norm(end, axis=1, keepdims=True)
    t = np.linspace(0, 1, 7)
    path = np.asarray(slerp(start, end, t))
    np.testing.assert_allclose(path[:, 0], start, atol=1e-5)
    np.testing.assert_allclose(path[:, -1], end, atol=1e-5)
    norms = np.linalg.norm(path, axis=-1)  # equal norms at the ends: the same norm throughout
    np.testing.assert_allclose(norms, np.linalg.norm(start, axis=1)[:, None].repeat(7, 1), 1e-5)
    angles = np.arccos(np.clip(np.sum(path[:, 1:] * path[:, :-1], -1) / norms[:, 1:] ** 2, -1, 1))
    np.testing.assert_allclose(angles, angles[:, :1].repeat(6, 1), atol=1e-4)  # even steps
    chord = np.asarray(lerp(start, end, t))
    np.testing.assert_allclose(chord[:, 3], (start + end) / 2, atol=1e-6)
    assert np.all(np.linalg.norm(chord[:, 3], axis=-1) < norms[:, 3])


@pytest.mark.parametrize(
    "run,arguments,message",
    [
        ("vae", {"labels": [3]}, "--labels were given, but this model is unconditional"),
        ("cdcgan", {"labels": [12]}, r"label 12 \(--labels\) is outside the model's classes"),
        ("cdcgan", {"num_images": 0}, "--num_images=0 must be at least 1"),
        ("cdcgan", {"step": 9}, "no complete checkpoint of step 9"),
        ("empty", {}, "config.json does not exist"),
        ("vae", {"full": True}, "is not empty"),
        ("vae", {"labels": [3], "export": True}, "this model is unconditional"),
        ("cdcgan", {"full": True, "export": True}, "is not empty"),
    ],
)
def test_bad_input_names_the_setting_and_writes_nothing(
    tiny_runs, tmp_path, run, arguments, message
):
    out = output_dir(tmp_path, occupied=arguments.pop("full", False))
    with pytest.raises(UserError, match=message):
        sample(tiny_runs.get(run, str(tmp_path)), str(out), **arguments)
    assert not out.exists() or [p.name for p in out.iterdir()] == ["keep.txt"]


def test_the_command_exits_2_with_one_error_line(tiny_runs, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cnngen_jax.commands.sample", f"--workdir={tiny_runs['vae']}",
         f"--out={tmp_path / 'out'}", "--labels=1,x"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --labels=1,x must be class numbers, e.g. 3,5,8"
    ]
    assert not (tmp_path / "out").exists()


def _export(run: str, out, **arguments) -> dict:
    """`sample --export` of 24 images into `out`; its TFDS source, folder images and labels."""
    sample(run, str(out), num_images=24, seed=1, export=True, **arguments)
    builder = tfds.builder_from_directory(str(out / "tfds"))
    pngs = sorted((out / "images" / "train").glob("*/*.png"), key=lambda p: p.name)
    return {
        "builder": builder,
        "source": builder.as_data_source(split="train"),
        "pngs": pngs,
        "folder": np.stack([np.asarray(Image.open(p)).reshape(16, 16, -1) for p in pngs]),
        "folder_labels": [p.parent.name for p in pngs],
    }


@pytest.mark.parametrize("family", ["cdcgan", "vae"])
def test_an_export_is_a_tfds_dataset_and_an_image_folder_of_the_generator_images(
    tiny_runs, tmp_path, family, data_dir, cache_dir, monkeypatch
):
    exported = _export(tiny_runs[family], tmp_path / "a")
    source = exported["source"]
    stored = np.stack([source[i]["image"] for i in range(len(source))])
    assert stored.shape == (24, 16, 16, 1) and stored.dtype == np.uint8
    np.testing.assert_array_equal(stored, exported["folder"])
    run = inference.load_run(tiny_runs[family])
    labels = None
    if family == "cdcgan":
        labels = np.arange(24) % 10  # balanced: every class in turn
        assert [source[i]["label"] for i in range(24)] == list(labels)
        assert exported["folder_labels"] == [str(label) for label in labels]
        assert exported["builder"].info.features["label"].num_classes == 10
    else:
        assert "label" not in exported["builder"].info.features
        assert set(exported["folder_labels"]) == {"unlabelled"}
    decode = inference.compiled(run.task.decode)  # as the export ran it: the same program
    generated = decode(run.state, export.latents(1, np.arange(24), 16), labels)
    np.testing.assert_array_equal(stored, pixels.to_uint8(generated))
    metadata = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert metadata["step"] == 2 and metadata["seed"] == 1 and metadata["num_images"] == 24
    assert metadata["workdir"] == tiny_runs[family] and metadata["date"]

    dataset = "dir:a"  # relative to the current directory, recorded as an absolute path
    monkeypatch.chdir(tmp_path)
    assert data.dataset_info(dataset).num_classes == (10 if family == "cdcgan" else None)
    config = tiny_config(data_dir, cache_dir, family, dataset=dataset, num_train_steps=2)
    without_evaluation(config)
    with one_device():
        train.train_and_evaluate(config, str(tmp_path / "trained"))
    assert (tmp_path / "trained" / "checkpoints").is_dir()
    recorded = json.loads((tmp_path / "trained" / "config.json").read_text())["dataset"]
    assert recorded == f"dir:{os.path.realpath(tmp_path / 'a')}"


def test_an_export_repeats_under_its_seed_and_draws_the_labels_asked(tiny_runs, tmp_path):
    a = _export(tiny_runs["cdcgan"], tmp_path / "a", labels=[3, 5])
    b = _export(tiny_runs["cdcgan"], tmp_path / "b", labels=[3, 5])
    assert [p.read_bytes() for p in a["pngs"]] == [p.read_bytes() for p in b["pngs"]]
    for i in range(24):  # the same records (the ArrayRecord file's header is not byte-stable)
        np.testing.assert_array_equal(a["source"][i]["image"], b["source"][i]["image"])
    assert a["folder_labels"] == ["3", "5"] * 12
    assert [a["source"][i]["label"] for i in range(24)] == [3, 5] * 12
    # Two exports of the same images are two datasets to the statistics caches.
    assert data.fingerprint(f"dir:{tmp_path / 'a'}") != data.fingerprint(f"dir:{tmp_path / 'b'}")


def test_a_bad_directory_dataset_names_the_setting(tmp_path):
    with pytest.raises(UserError, match=r"'dir:.*' \(config.dataset\) names neither"):
        data.get_spec(f"dir:{tmp_path}")
