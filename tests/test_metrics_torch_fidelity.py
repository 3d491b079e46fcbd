"""Parity of the JAX metrics with torch-fidelity, the reference implementation we follow.

torch-fidelity's package `__init__` imports torchvision, which we do not install; its metric and
feature-extractor modules are imported on their own with that one dependency stubbed out.
"""

import importlib
import importlib.util
import sys
import types
from unittest import mock

import jax
import numpy as np
import pytest

from cnngen_jax.commands import convert_inception
from cnngen_jax.metrics import MomentAccumulator, frechet_distance
from cnngen_jax.metrics.inception import FIDInceptionV3, resize_like_tf1
from cnngen_jax.metrics.inception_score import inception_score
from cnngen_jax.metrics.inception_weights import load_inception_weights
from cnngen_jax.metrics.kid import kernel_inception_distance
from cnngen_jax.metrics.precision_recall import precision_recall
from tests.conftest import REFERENCE_INSTALL, REQUIRED, reference

pytestmark = pytest.mark.torch
torch = reference("torch")
# Not reference("torch_fidelity"): its package __init__ needs torchvision.
if importlib.util.find_spec("torch_fidelity") is None and not REQUIRED:
    pytest.skip(f"torch-fidelity is not installed ({REFERENCE_INSTALL})", allow_module_level=True)

_UTILS_NAMES = (
    "cache_lookup_one_recompute_on_miss",
    "create_feature_extractor",
    "extract_featuresdict_from_input_id_cached",
    "resolve_feature_extractor",
    "resolve_feature_layer_for_metric",
    "get_cacheable_input_name",
)


def _torch_fidelity(name: str) -> types.ModuleType:
    """Import `torch_fidelity.<name>` without the package `__init__` (it needs torchvision)."""
    spec = importlib.util.find_spec("torch_fidelity")
    package = types.ModuleType("torch_fidelity")
    package.__path__ = list(spec.submodule_search_locations)
    utils = types.ModuleType("torch_fidelity.utils")  # only its feature-cache plumbing is stubbed
    for attr in _UTILS_NAMES:
        setattr(utils, attr, None)
    with mock.patch.dict(sys.modules, {"torch_fidelity": package, "torch_fidelity.utils": utils}):
        return importlib.import_module(f"torch_fidelity.{name}")


def _random_reference_inception(seed: int) -> torch.nn.Module:
    """torch-fidelity's Inception with random weights that keep activations O(1)."""
    module = _torch_fidelity("feature_extractor_inceptionv3")
    cls = module.FeatureExtractorInceptionV3
    with (
        mock.patch.object(module, "load_state_dict_from_url", return_value=None),
        mock.patch.object(cls, "load_state_dict"),
    ):
        model = cls("inception-v3-compat", ["2048", "logits_unbiased", "logits"])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("conv.weight"):
                fan_in = tensor[0].numel()
                tensor.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
            elif name.endswith(("bn.weight", "bn.running_var")):
                tensor.uniform_(0.5, 1.5, generator=generator)
            elif name.endswith(("bn.bias", "bn.running_mean", "fc.bias")):
                tensor.uniform_(-0.2, 0.2, generator=generator)
            elif name.endswith("fc.weight"):
                tensor.normal_(0.0, 2048**-0.5, generator=generator)
    return model


def test_inception_matches_torch_fidelity_through_conversion(tmp_path):
    reference = _random_reference_inception(seed=0)
    torch_path, npz_path = tmp_path / "random.pth", tmp_path / "random.npz"
    torch.save(reference.state_dict(), torch_path)
    assert convert_inception.main([f"--torch_weights={torch_path}", f"--out={npz_path}"]) == 0
    weights = load_inception_weights(npz_path)

    images = np.random.default_rng(0).integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = reference(torch.from_numpy(images).permute(0, 3, 1, 2))
    got = jax.jit(FIDInceptionV3().apply)(weights.variables, images)
    for name, want in zip(("pool", "logits_unbiased", "logits"), expected, strict=True):
        want = want.numpy()
        assert got[name].shape == want.shape
        scale = np.abs(want).max()
        assert scale > 1e-2, "random weights must give non-trivial activations"
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("shape", [(5, 7), (32, 32), (299, 299), (400, 310)])
def test_resize_matches_torch_fidelity(shape):
    interpolate = _torch_fidelity("interpolate_compat_tensorflow")
    images = np.random.default_rng(1).uniform(0, 255, (2, *shape, 3)).astype(np.float32)
    want = interpolate.interpolate_bilinear_2d_like_tensorflow1x(
        torch.from_numpy(images).permute(0, 3, 1, 2), size=(299, 299), align_corners=False
    )
    got = np.asarray(resize_like_tf1(images, 299))
    np.testing.assert_allclose(got, want.permute(0, 2, 3, 1).numpy(), rtol=0, atol=1e-4)
    if shape == (299, 299):
        np.testing.assert_array_equal(got, images)


def test_streamed_fid_matches_torch_fidelity():
    fid = _torch_fidelity("metric_fid")
    rng = np.random.default_rng(5)
    real = rng.normal(size=(300, 20)) @ rng.normal(size=(20, 20))
    generated = rng.normal(0.2, 1.0, size=(250, 20)) @ rng.normal(size=(20, 20))
    streamed = []
    for features in (real, generated):
        accumulator = MomentAccumulator(20)
        for batch in np.array_split(features, 7):
            accumulator.update(batch)
        streamed.append(accumulator.stats())
    want = fid.fid_statistics_to_metric(
        fid.fid_features_to_statistics(torch.from_numpy(real)),
        fid.fid_features_to_statistics(torch.from_numpy(generated)),
        verbose=False,
    )["frechet_inception_distance"]
    got = frechet_distance(streamed[0].mean, streamed[0].cov, streamed[1].mean, streamed[1].cov)
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("subset_size", [10, 25])
def test_kid_matches_torch_fidelity(subset_size):
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(60, 16)), rng.normal(0.3, 1.2, size=(40, 16))
    reference = _torch_fidelity("metric_kid").kid_features_to_metric(
        torch.from_numpy(fake),
        torch.from_numpy(real),
        kid_subsets=7,
        kid_subset_size=subset_size,
        rng_seed=2020,
        verbose=False,
    )
    mean, std = kernel_inception_distance(real, fake, subsets=7, subset_size=subset_size, seed=2020)
    np.testing.assert_allclose(mean, reference["kernel_inception_distance_mean"], rtol=1e-10)
    np.testing.assert_allclose(std, reference["kernel_inception_distance_std"], rtol=1e-10)


@pytest.mark.parametrize(("splits", "shuffle"), [(1, False), (3, True), (10, True)])
def test_inception_score_matches_torch_fidelity(splits, shuffle):
    logits = np.random.default_rng(3).normal(0, 3, size=(103, 12))
    reference = _torch_fidelity("metric_isc").isc_features_to_metric(
        torch.from_numpy(logits), splits=splits, shuffle=shuffle, rng_seed=2020
    )
    mean, std = inception_score(logits, splits=splits, shuffle=shuffle, seed=2020)
    np.testing.assert_allclose(mean, reference["inception_score_mean"], rtol=1e-10)
    np.testing.assert_allclose(std, reference["inception_score_std"], rtol=1e-9, atol=1e-12)


def test_precision_recall_matches_torch_fidelity():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(70, 8)).astype(np.float32)
    fake = rng.normal(0.5, 1.3, size=(50, 8)).astype(np.float32)
    want_precision, want_recall = _torch_fidelity("metric_prc").calculate_precision_recall_full(
        torch.from_numpy(fake), torch.from_numpy(real), neighborhood=3
    )
    precision, recall = precision_recall(real, fake, k=3, batch_size=16)
    # torch-fidelity returns float32 fractions; one sample more or less would differ by >= 1/70.
    assert (precision, recall) == pytest.approx((want_precision, want_recall), abs=1e-6)
    assert 0 < precision < 1 and 0 < recall < 1
