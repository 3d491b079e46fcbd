"""`python -m cnngen_jax.commands.edit` (`cnngen_jax.editing`) and GAN inversion on tiny runs: a
known latent's image recovered, determinism under a seed, the VAE's encode / edit / decode path,
latent arithmetic, and bad input."""

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from cnngen_jax import inference, inversion, pixels
from cnngen_jax.editing import attribute_direction, edit, edit_images
from cnngen_jax.errors import UserError
from tests.conftest import ROOT, VGG_WEIGHTS, output_dir

FEW = inversion.Settings(steps=5, restarts=2, learning_rate=0.1)


@pytest.fixture(scope="module")
def loaded(tiny_runs) -> dict[str, inference.LoadedRun]:
    return {family: inference.load_run(tiny_runs[family]) for family in ("dcgan", "cdcgan", "vae")}


def write_pngs(folder, pictures: np.ndarray, prefix: str = "image") -> list[str]:
    """`pictures` (N, H, W, 1) in [-1, 1] as greyscale PNG files in `folder`; their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, picture in enumerate(pixels.to_uint8(pictures)):
        paths.append(os.path.join(folder, f"{prefix}{i}.png"))
        Image.fromarray(picture[..., 0]).save(paths[-1])
    return paths


def generated(run: inference.LoadedRun, seed: int, count: int) -> tuple[np.ndarray, jax.Array]:
    """`count` images of the run's generator from latents drawn with `seed`, and the latents."""
    latents = jax.random.normal(jax.random.key(seed), (count, run.task.latent_dim))
    return np.asarray(run.task.decode(run.state, latents)), latents


def test_inversion_recovers_the_image_of_a_known_latent(loaded):
    run = loaded["dcgan"]
    targets, _ = generated(run, seed=42, count=3)
    others, _ = generated(run, seed=7, count=3)
    chance = np.asarray(inversion.pixel_mse(others, targets))  # the error of a random latent
    settings = inversion.Settings(steps=100, restarts=2, learning_rate=0.1)
    key = jax.random.key(0)
    found = inversion.invert(
        run.task.decode, run.state, targets, None, run.task.latent_dim, key, settings
    )
    # Measured: MSE ~1e-8 (PSNR ~70-80 dB) from ~1e-3 at the best start and at chance.
    assert np.all(found.mse < 1e-3 * found.start_mse)
    assert np.all(found.mse < 1e-3 * chance)
    assert np.all(found.psnr > 55)
    np.testing.assert_allclose(found.reconstructions, targets, atol=0.01)


def test_a_seed_gives_the_same_latents_and_each_image_is_projected_alone(loaded):
    run = loaded["dcgan"]
    targets, _ = generated(run, seed=1, count=3)

    def invert(pictures, seed):
        key = jax.random.key(seed)
        return inversion.invert(
            run.task.decode, run.state, pictures, None, run.task.latent_dim, key, FEW
        ).latents

    first, again, other = invert(targets, 0), invert(targets, 0), invert(targets, 1)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    # Image 0's starts and steps do not depend on the images beside it.
    np.testing.assert_allclose(invert(targets[:1], 0)[0], first[0], atol=1e-4)


def test_a_vae_encodes_edits_and_decodes_through_the_command(tiny_runs, loaded, tmp_path):
    run = loaded["vae"]
    decoded = np.asarray(run.task.generate(run.state, jax.random.key(3), 8))
    inputs = write_pngs(tmp_path / "inputs", decoded[:2])
    write_pngs(tmp_path / "without", decoded[2:5])
    group_b = write_pngs(tmp_path / "with", decoded[5:], prefix="b")
    out = tmp_path / "out"
    written, report = edit(
        tiny_runs["vae"],
        inputs,
        str(out),
        attribute_a=[str(tmp_path / "without")],  # a directory
        attribute_b=group_b,  # a list of files
        strengths=(0.0, 1.0),
        interpolation_steps=4,
    )
    assert sorted(os.listdir(out)) == [
        "arithmetic.png", "direction.npy", "interpolation.png", "latents.npy", "projection.png",
        "report.json",
    ]  # fmt: skip
    assert sorted(written) == sorted(str(out / name) for name in os.listdir(out))
    assert json.loads((out / "report.json").read_text()) == report
    assert report["method"] == "encoder" and report["inversion"] is None and report["step"] == 2
    assert [entry["path"] for entry in report["inputs"]] == inputs
    # The latents are the encoder's posterior means; the direction is the groups' mean difference.
    read_back = pixels.to_float(pixels.to_uint8(decoded))  # as read back from the PNG files
    means = np.asarray(run.task.encode(run.state, read_back))
    np.testing.assert_allclose(np.load(out / "latents.npy"), means[:2], atol=1e-5)
    expected = means[5:].mean(axis=0) - means[2:5].mean(axis=0)
    np.testing.assert_allclose(np.load(out / "direction.npy"), expected, atol=1e-5)
    assert Image.open(out / "arithmetic.png").size == (2 * 18 + 2, 2 * 18 + 2)
    assert Image.open(out / "interpolation.png").size == (4 * 18 + 2, 18 + 2)


def test_latent_arithmetic_adds_the_mean_difference_at_each_strength(loaded):
    run = loaded["vae"]
    pictures = np.asarray(run.task.generate(run.state, jax.random.key(4), 6))
    groups = (pictures[2:4], pictures[4:])
    edits = edit_images(run, pictures[:2], groups=groups, strengths=(0.0, 2.0))
    latents = np.asarray(run.task.encode(run.state, pictures))
    direction = latents[4:].mean(axis=0) - latents[2:4].mean(axis=0)
    np.testing.assert_allclose(edits.direction, direction, atol=1e-5)
    moved = np.asarray(run.task.decode(run.state, latents[:2] + 2.0 * direction))
    np.testing.assert_allclose(edits.pictures["arithmetic"][:, 1], moved, atol=1e-5)
    np.testing.assert_allclose(
        edits.pictures["arithmetic"][:, 0], edits.projection.reconstructions, atol=1e-5
    )
    known = np.array([[1.0, 0.0], [3.0, 2.0]]), np.array([[0.0, 5.0], [2.0, 7.0], [4.0, 3.0]])
    np.testing.assert_array_equal(attribute_direction(*known), [0.0, 4.0])


def test_a_conditional_gan_inverts_each_image_in_its_class_with_a_feature_loss(
    tiny_runs, data_dir, tmp_path
):
    inputs = write_pngs(tmp_path / "in", np.zeros((2, 16, 16, 1)) - 0.5)
    settings = inversion.Settings(steps=20, restarts=2, learning_rate=0.1, feature_weight=0.01)
    _, report = edit(
        tiny_runs["cdcgan"],
        inputs,
        str(tmp_path / "out"),
        labels=[3, 5],
        settings=settings,
        vgg_weights=os.path.join(data_dir, VGG_WEIGHTS),
    )
    assert report["method"] == "inversion" and report["inversion"]["feature_weight"] == 0.01
    assert [entry["label"] for entry in report["inputs"]] == [3, 5]
    assert all(entry["mse"] < entry["start_mse"] for entry in report["inputs"])


def input_file(folder, kind: str) -> str:
    """An input image of `kind`: "grey" (16x16, saved as RGB: accepted by a grey model),
    "colour", "large" (32x32), "text" (not an image) or "missing"."""
    path = folder / f"{kind}.png"
    if kind == "text":
        path.write_text("not an image")
    elif kind != "missing":
        pixels = np.full((32 if kind == "large" else 16,) * 2 + (3,), 90, np.uint8)
        pixels[..., 0] = 200 if kind == "colour" else 90
        Image.fromarray(pixels).save(path)
    return str(path)


@pytest.mark.parametrize(
    "run,arguments,message",
    [
        ("empty", {}, "config.json does not exist"),
        ("no_checkpoint", {}, "no complete checkpoint in"),
        ("dcgan", {"step": 9}, "no complete checkpoint of step 9"),
        ("dcgan", {"labels": [3]}, "--labels were given, but this model is unconditional"),
        ("cdcgan", {}, "conditional on 10 classes: give --labels"),
        ("cdcgan", {"labels": [1, 2]}, r"--labels must be 1 class numbers"),
        ("dcgan", {"full": True}, "is not empty"),
        ("dcgan", {"input": "colour"}, r"has 3 channels \(RGB\); the model takes 1-channel"),
        ("dcgan", {"input": "large"}, "is 32x32 pixels; the model takes 16x16 images"),
        ("dcgan", {"input": "text"}, "is not a readable image"),
        ("dcgan", {"input": "missing"}, "does not exist"),
        ("dcgan", {"attribute_a": ["x.png"]}, "give both --attribute_a and --attribute_b"),
        ("dcgan", {"settings": {"restarts": 0}}, "--restarts=0 must be at least 1"),
    ],
)
def test_bad_input_names_the_setting_and_writes_nothing(
    tiny_runs, tmp_path, run, arguments, message
):
    out = output_dir(tmp_path, occupied=arguments.pop("full", False))
    workdir = tiny_runs.get(run, str(tmp_path))
    if run == "no_checkpoint":
        workdir = str(tmp_path / "copy")
        os.mkdir(workdir)
        shutil.copy(os.path.join(tiny_runs["dcgan"], "config.json"), workdir)
    image = input_file(tmp_path, arguments.pop("input", "grey"))
    with pytest.raises(UserError, match=message):
        settings = inversion.Settings(**{"steps": 1, **arguments.pop("settings", {})})
        edit(workdir, [image], str(out), settings=settings, **arguments)
    assert not out.exists() or [p.name for p in out.iterdir()] == ["keep.txt"]


def test_the_command_exits_2_with_one_error_line(tiny_runs, tmp_path):
    image = input_file(tmp_path, "missing")
    result = subprocess.run(
        [sys.executable, "-m", "cnngen_jax.commands.edit", f"--workdir={tiny_runs['dcgan']}",
         f"--input={image}", f"--out={tmp_path / 'out'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: --input={image} does not exist"]
    assert not (tmp_path / "out").exists()
