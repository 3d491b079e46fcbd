"""`python -m cnngen_jax.sample` on tiny runs: determinism under a seed, conditional pictures,
the interpolation paths, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cnngen_jax.errors import UserError
from cnngen_jax.sample import lerp, sample, slerp
from tests.conftest import ROOT, train_tiny_runs


@pytest.fixture(scope="module")
def runs(data_dir, cache_dir, tmp_path_factory) -> dict[str, str]:
    """Two-step runs of a conditional GAN and an unconditional VAE."""
    return train_tiny_runs(("cdcgan", "vae"), data_dir, cache_dir, tmp_path_factory)


def test_a_seed_gives_the_same_images_and_another_seed_others(runs, tmp_path):
    written = sample(runs["vae"], str(tmp_path / "a"), num_images=9, seed=5)
    assert {p.rsplit("/", 1)[1] for p in written} == {
        "samples.png", "interpolation_linear.png", "interpolation_slerp.png", "samples.npy",
        "metadata.json",
    }  # fmt: skip
    sample(runs["vae"], str(tmp_path / "b"), num_images=9, seed=5)
    sample(runs["vae"], str(tmp_path / "c"), num_images=9, seed=6)
    a, b, c = (np.load(tmp_path / name / "samples.npy") for name in "abc")
    assert a.shape == (9, 16, 16, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    metadata = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert metadata["step"] == 2 and metadata["seed"] == 5


def test_a_conditional_model_draws_the_classes_asked(runs, tmp_path):
    sample(runs["cdcgan"], str(tmp_path / "all"), num_images=10, seed=0, interpolation_steps=3)
    sample(runs["cdcgan"], str(tmp_path / "threes"), num_images=10, seed=0, labels=[3])
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
    ],
)
def test_bad_input_names_the_setting_and_writes_nothing(runs, tmp_path, run, arguments, message):
    out = tmp_path / "out"
    if arguments.pop("full", False):
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match=message):
        sample(runs.get(run, str(tmp_path)), str(out), **arguments)
    assert not out.exists() or [p.name for p in out.iterdir()] == ["keep.txt"]


def test_the_command_exits_2_with_one_error_line(runs, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cnngen_jax.sample", f"--workdir={runs['vae']}",
         f"--out={tmp_path / 'out'}", "--labels=1,x"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --labels=1,x must be class numbers, e.g. 3,5,8"
    ]
    assert not (tmp_path / "out").exists()
