"""Offline evaluation: the domain classifier, cached reference statistics, the protocol stamp,
the conditional metrics on generators with known answers, the trainer's periodic evaluation and
`python -m cnngen_jax.commands.evaluate` on a tiny class-conditional run."""

import importlib
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from PIL import Image

import cnngen_jax
from cnngen_jax import data, inference
from cnngen_jax.errors import UserError
from cnngen_jax.evaluators import sample_quality
from cnngen_jax.metrics import InceptionWeightsMissing, domain
from cnngen_jax.tasks import create_task
from tests.conftest import FAST_COMPILE, ROOT, run_main, tiny_config, tiny_flags

SIZE = 16  # the tiny configs' image size


@pytest.fixture(scope="module")
def eval_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("eval_cache"))


@pytest.fixture(scope="module")
def classifier(data_dir, eval_cache) -> domain.TrainedClassifier:
    """Trained once at its default settings (a few seconds) into the module's cache."""
    return domain.load_or_train("digits", SIZE, data_dir, eval_cache)


def make_evaluator(data_dir, cache, **overrides) -> sample_quality.SampleMetrics:
    settings = dict(
        feature_net="domain",
        num_samples=297,
        inception_weights="",
        cache_dir=cache,
        dataset="digits",
        image_size=SIZE,
        data_dir=data_dir,
        batch_size=64,
        seed=0,
    )
    return sample_quality.SampleMetrics(**{**settings, **overrides})


def split_images(data_dir, split) -> np.ndarray:
    """The split's images resized here with PIL, apart from the project's input pipeline (the
    filter matters: bicubic instead of bilinear moves the FID of the split to itself to ~4)."""
    source = data.open_source("digits", split, data_dir)
    bilinear = Image.Resampling.BILINEAR
    resized = [
        np.asarray(Image.fromarray(source[i]["image"][..., 0]).resize((SIZE, SIZE), bilinear))
        for i in range(len(source))
    ]
    return np.stack(resized)[..., None]


def labels(data_dir, split) -> np.ndarray:
    source = data.open_source("digits", split, data_dir)
    return np.array([source[i]["label"] for i in range(len(source))])


def fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula with scipy's general matrix square root."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    diff = a.mean(0) - b.mean(0)
    return float(diff @ diff + np.trace(cov_a + cov_b - 2 * root))


def test_classifier_learns_the_digits(classifier, data_dir):
    images = split_images(data_dir, "test")
    logits = np.asarray(classifier.model.apply(classifier.variables, images)["logits"])
    accuracy = np.mean(logits.argmax(-1) == labels(data_dir, "test"))
    assert accuracy > 0.9  # chance is 0.1
    assert accuracy == pytest.approx(classifier.test_accuracy, abs=0.01)


def test_classifier_cache_is_pickle_free_hash_stamped_and_reused(
    classifier, data_dir, eval_cache, tmp_path, monkeypatch
):
    with np.load(classifier.path, allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)
        assert str(npz["meta/sha256"]) == classifier.sha256
    monkeypatch.setattr(domain, "train_classifier", lambda *a: pytest.fail("trained again"))
    again = domain.load_or_train("digits", SIZE, data_dir, eval_cache)
    assert again.sha256 == classifier.sha256 and again.test_accuracy == classifier.test_accuracy
    assert again.path == classifier.path

    other = domain.ClassifierSettings(steps=domain.DEFAULT_SETTINGS.steps + 1)
    assert domain.cache_path(eval_cache, "digits", SIZE, other) != classifier.path
    assert domain.cache_path(eval_cache, "digits", 32, domain.DEFAULT_SETTINGS) != classifier.path

    edited = tmp_path / os.path.relpath(classifier.path, eval_cache)
    edited.parent.mkdir(parents=True)
    with np.load(classifier.path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["params/Dense_1/bias"] = arrays["params/Dense_1/bias"] + 1.0
    np.savez(edited, **arrays)
    with pytest.raises(UserError, match="stored hash"):
        domain.load_or_train("digits", SIZE, data_dir, str(tmp_path))


def test_fid_is_zero_on_the_split_itself_large_on_noise(
    classifier, data_dir, eval_cache, monkeypatch
):
    monkeypatch.setattr(sample_quality, "KID_SUBSETS", 10)  # 100 take seconds on a busy CPU
    evaluator = make_evaluator(data_dir, eval_cache)
    reference = evaluator.cached_reference("test")
    test_images, train_images = split_images(data_dir, "test"), split_images(data_dir, "train")

    itself = evaluator.score(reference, [test_images])
    assert abs(itself["domain_fid"]) < 1e-6
    assert itself["domain_precision"] == itself["domain_recall"] == 1.0

    train_images = train_images[: len(test_images)]  # one shape: one compilation
    train = evaluator.score(reference, [train_images])
    features = {
        name: np.asarray(classifier.model.apply(classifier.variables, images)["features"])
        for name, images in (("test", test_images), ("train", train_images))
    }
    assert np.linalg.matrix_rank(np.cov(features["test"], rowvar=False)) == 128  # none dead
    np.testing.assert_allclose(reference.stats.mean, features["test"].mean(0), rtol=1e-5)
    want = fid_reference(features["test"], features["train"])
    assert train["domain_fid"] == pytest.approx(want, rel=1e-3)

    noise = np.random.default_rng(0).integers(0, 256, test_images.shape, dtype=np.uint8)
    noisy = evaluator.score(reference, [noise])
    assert noisy["domain_fid"] > 20 * train["domain_fid"]
    assert noisy["domain_kid"] > 20 * abs(train["domain_kid"])
    assert noisy["domain_precision"] < 0.05 and train["domain_precision"] > 0.5


def test_reference_cache_is_pickle_free_and_keyed_by_protocol(
    classifier, data_dir, eval_cache, tmp_path, monkeypatch
):
    evaluator = make_evaluator(data_dir, eval_cache)
    reference = evaluator.cached_reference("test")
    (path,) = [p for p in os.listdir(os.path.join(eval_cache, "reference")) if "-test-" in p]
    path = os.path.join(eval_cache, "reference", path)
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(str(npz["key"])) == reference.key
    monkeypatch.setattr(
        sample_quality, "extract_features", lambda *a, **k: pytest.fail("recomputed")
    )
    again = evaluator.cached_reference("test")
    np.testing.assert_array_equal(again.features, reference.features)
    np.testing.assert_array_equal(again.stats.cov, reference.stats.cov)
    monkeypatch.undo()

    copied = tmp_path / "reference" / os.path.basename(path)
    copied.parent.mkdir()
    shutil.copy(path, copied)
    shutil.copytree(os.path.join(eval_cache, "domain_classifier"), tmp_path / "domain_classifier")
    with np.load(copied, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["mean"] = arrays["mean"] + 1e-3
    np.savez(copied, **arrays)
    with pytest.raises(UserError, match="do not match"):
        make_evaluator(data_dir, str(tmp_path)).cached_reference("test")


def test_protocol_stamp_names_everything_that_determines_the_numbers(
    classifier, data_dir, eval_cache
):
    evaluator = make_evaluator(data_dir, eval_cache, num_samples=40, batch_size=16)
    stamp = evaluator.protocol(evaluator.cached_reference("test"))
    assert stamp["dataset"] == "digits" and stamp["split"] == "test"
    assert stamp["image_size"] == SIZE and stamp["resize"].startswith("PIL bilinear")
    assert stamp["num_real"] == 297 and stamp["num_fake"] == 40
    assert stamp["feature_net"] == "domain" and stamp["feature_net_sha256"] == classifier.sha256
    assert stamp["cnngen_jax_version"] == cnngen_jax.__version__
    assert stamp["comparable_to_inception_fid"] is False and "Inception" in stamp["note"]
    assert stamp["kid_subset_size"] == 40 and stamp["generation_batch_size"] == 16
    assert stamp["domain_classifier_test_accuracy"] == classifier.test_accuracy


def real_image_generator(data_dir, shift: int):
    """A jittable `generate` drawing real training images: of class (label + shift) % 10, so
    shift 0 obeys its labels and shift 1 draws every class under its neighbour's label."""
    images, classes = split_images(data_dir, "train"), labels(data_dir, "train")
    per_class = min(np.sum(classes == c) for c in range(10))
    table = np.stack([images[classes == c][:per_class] for c in range(10)])
    table = jnp.asarray(table, jnp.float32) / 127.5 - 1.0

    def generate(state, key, num_images, labels):
        rows = jax.random.randint(key, (num_images,), 0, per_class)
        return table[(labels + shift) % 10, rows]

    return generate


def test_conditional_metrics_see_what_overall_fid_cannot(classifier, data_dir, eval_cache):
    evaluator = make_evaluator(data_dir, eval_cache, num_samples=500, batch_size=100)
    reference = evaluator.cached_reference("test")
    every_class = evaluator.classes(10)
    right = evaluator.evaluate(reference, real_image_generator(data_dir, 0), None, every_class)
    swapped = evaluator.evaluate(reference, real_image_generator(data_dir, 1), None, every_class)
    # Real images either way, so both overall FIDs are small (train against test images) ...
    assert max(right["domain_fid"], swapped["domain_fid"]) < 0.05 * swapped["domain_intra_fid"]
    # ... but only the obedient generator shows each class as asked.
    assert right["class_accuracy"] > 0.9 and swapped["class_accuracy"] < 0.05
    assert swapped["domain_intra_fid"] > 5 * right["domain_intra_fid"]
    # Trained on real images with their true labels, CAS is about the real-data classifier's
    # accuracy (a different sample of the same images); on shifted labels it learns the shift.
    assert right["cas"] == pytest.approx(right["cas_real"], abs=0.05)
    assert right["cas_real"] == pytest.approx(classifier.test_accuracy)
    assert swapped["cas"] < 0.05
    assert {f"class_accuracy_{c}" for c in range(10)} <= right.keys()

    three_and_seven = evaluator.classes(10, [3, 7])
    subset = evaluator.evaluate(reference, real_image_generator(data_dir, 0), None, three_and_seven)
    assert {k for k in subset if k.startswith("class_accuracy_")} == {
        "class_accuracy_3",
        "class_accuracy_7",
    }
    with pytest.raises(UserError, match="label 12 .*--labels"):
        evaluator.classes(10, [3, 12])


@pytest.mark.parametrize(
    "overrides, error, expected",
    [
        ({"feature_net": "vgg"}, UserError, "feature_net"),
        ({"num_samples": 5}, UserError, "num_samples"),
        ({"dataset": "celeb_a"}, UserError, "no class labels"),
        ({"feature_net": "inception"}, InceptionWeightsMissing, "convert_inception"),
    ],
)
def test_bad_settings_are_reported_before_any_work(data_dir, tmp_path, overrides, error, expected):
    with pytest.raises(error, match=expected):
        make_evaluator(data_dir, str(tmp_path), **overrides)


def run_evaluate(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "XLA_FLAGS": FAST_COMPILE}  # as the trainer's subprocess
    return subprocess.run(
        [sys.executable, "-m", "cnngen_jax.commands.evaluate", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir, cache_dir, eval_cache, classifier):
    """A class-conditional DCGAN: four steps with evaluation every two (and at step 0), 40
    generated images each time."""
    workdir = tmp_path_factory.mktemp("run")
    overrides = {
        "num_train_steps": 4,
        "checkpoint_every_steps": 2,
        "evals.sample_quality.every_steps": 2,
        "evals.sample_quality.num_samples": 40,
        "evals.sample_quality.cache_dir": eval_cache,
    }
    args = ["--config=configs/cdcgan.py", f"--workdir={workdir}"]
    result = run_main(args + tiny_flags(data_dir, cache_dir, "cdcgan", **overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


@pytest.mark.e2e
def test_trainer_evaluates_every_every_steps(tiny_run, classifier):
    workdir, result = tiny_run
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evaluated = [m["step"] for m in lines if "domain_fid" in m]
    assert evaluated == [0, 2, 4]
    assert all("domain_intra_fid" in m and "cas" in m for m in lines if "domain_fid" in m)
    assert "evaluation protocol" in result.stdout and classifier.sha256 in result.stdout


@pytest.mark.e2e
def test_evaluate_command_matches_the_trainers_last_evaluation(tiny_run):
    workdir, _ = tiny_run
    result = run_evaluate([f"--workdir={workdir}"])
    assert result.returncode == 0, result.stderr[-3000:]
    printed = json.loads(result.stdout)
    (written,) = [
        json.loads(line) for line in (workdir / "evaluation.jsonl").read_text().splitlines()
    ]
    assert printed == written
    protocol = written["protocol"]["sample_quality"]
    assert written["step"] == 4 and protocol["num_fake"] == 40
    assert protocol["split"] == "test" and protocol["num_real"] == 297
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    during_training = [m for m in metrics if m["step"] == 4 and "domain_fid" in m][0]
    names = ("domain_fid", "domain_kid", "domain_precision", "domain_recall", "class_accuracy")
    for name in (*names, "domain_intra_fid", "cas", "cas_real"):
        assert written[name] == pytest.approx(during_training[name], rel=1e-5, abs=1e-9), name
    assert protocol["conditional"]["classes"] == list(range(10))


LEGACY = os.path.join(ROOT, "tests", "legacy_configs")


@pytest.mark.parametrize("name", sorted(f[:-5] for f in os.listdir(LEGACY)))
def test_legacy_evaluation_settings_translate_to_the_configs_evals(name, tmp_path):
    """config.json files of every config as version 0.3.0 wrote them (before config.evals):
    their evaluation settings become the evals the same config declares today."""
    shutil.copy(os.path.join(LEGACY, f"{name}.json"), tmp_path / "config.json")
    loaded = inference.load_run_config(str(tmp_path))
    assert not set(inference.LEGACY_EVAL_SETTINGS) & set(loaded)
    module = importlib.import_module(f"cnngen_jax.configs.{name}")
    assert loaded.evals.to_dict() == module.get_config().evals.to_dict()


def test_a_legacy_workdir_written_by_the_trainer_loads_and_evaluates(tiny_runs, tmp_path):
    """A workdir trained by the current code, its config.json rewritten in the 0.3.0 form."""
    workdir = tmp_path / "run"
    shutil.copytree(tiny_runs["vae"], workdir)
    config = json.loads((workdir / "config.json").read_text())
    del config["evals"]
    config.update(eval_every_steps=0, eval_iw_samples=2)
    config["eval"] = {"feature_net": "domain", "num_samples": 0, "inception_weights": ""}
    (workdir / "config.json").write_text(json.dumps(config))
    run = inference.load_run(str(workdir))
    assert run.config.evals.elbo.iw_samples == 2 and run.step == 2
    result = inference.evaluate_run(str(workdir), evals=["elbo"])
    assert np.isfinite(result["test_nelbo"]) and result["protocol"]["elbo"]["iw_samples"] == 2


def test_a_config_from_before_conditioning_still_loads(tmp_path):
    config = json.loads(tiny_config(family="dcgan").to_json())  # as the trainer writes it
    del config["class_loss_weight"], config["model"]["conditioning"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = inference.load_run_config(str(tmp_path))
    assert loaded.model.conditioning == "none" and loaded.class_loss_weight == 1.0
    assert create_task(loaded, data.dataset_info("digits")).num_classes == 0


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--feature_net=inception"], "convert_inception"),
        (["--split=validation"], "--split"),
        (["--labels=3,12"], "label 12 (--labels or config.evals.sample_quality.labels) is"),
        (["--evals=elbo"], "--evals names ['elbo']"),
        (["--labels=0,1,2,3,4,5", "--num_samples=10"], "fewer than 2 images to each of 6"),
    ],
)
@pytest.mark.e2e
def test_evaluate_command_mistakes_give_one_error_line(tiny_run, args, expected):
    workdir, _ = tiny_run
    jsonl = workdir / "evaluation.jsonl"
    before = jsonl.read_text() if jsonl.exists() else None
    result = run_evaluate([f"--workdir={workdir}", *args])
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expected in errors[0] and "Traceback" not in result.stderr
    assert (jsonl.read_text() if jsonl.exists() else None) == before
