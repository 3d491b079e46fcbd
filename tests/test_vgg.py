"""VGG16/19 features against a torchvision-layout PyTorch network (random weights, converted by
the converter and read by the loader), the converter's and loader's refusals, and the perceptual,
content and style losses against float64 NumPy."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax import perceptual
from cnngen_jax.commands import convert_vgg
from cnngen_jax.errors import UserError
from cnngen_jax.models import vgg

# torchvision/models/vgg.py's cfgs "D" (vgg16) and "E" (vgg19); "M" is a 2x2 max pool.
CFGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", *[256] * 3, "M", *[512] * 3, "M", *[512] * 3, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", *[256] * 4, "M", *[512] * 4, "M", *[512] * 4, "M"],
}
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _names(cfg: list) -> list[str]:
    """BasicSR's name of each module of torchvision's `features`, by index."""
    names, block, conv = [], 1, 0
    for value in cfg:
        if value == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


def _torchvision_vgg(torch, cfg: list, batch_norm: bool = False):
    """A module with torchvision's VGG state-dict keys: `features` as torchvision's `make_layers`
    builds it, a small stand-in `classifier` (the converter drops it). Weights as torchvision
    initialises them (He normal, fan out) so activations keep their scale through 16 layers;
    biases random rather than torchvision's zeros, so that their conversion is checked too."""
    nn = torch.nn
    layers, channels = [], 3
    for value in cfg:
        if value == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        conv = nn.Conv2d(channels, value, kernel_size=3, padding=1)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(conv.bias, std=0.1)
        # torchvision's ReLU is in place; out of place here, so recorded activations stay put.
        layers += [conv, *([nn.BatchNorm2d(value)] if batch_norm else []), nn.ReLU()]
        channels = value
    model = nn.Module()
    model.features = nn.Sequential(*layers)
    model.classifier = nn.Sequential(
        nn.Linear(8, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 8), nn.ReLU(), nn.Dropout()
    )
    model.classifier.append(nn.Linear(8, 4))
    return model


@pytest.fixture(scope="module")
def torchvision_file(tmp_path_factory):
    """(arch, batch_norm) -> (saved .pth path, its PyTorch module), each built once."""
    from tests.conftest import reference

    torch = reference("torch")
    torch.manual_seed(0)
    made = {}

    def get(arch: str, batch_norm: bool = False):
        if (arch, batch_norm) not in made:
            model = _torchvision_vgg(torch, CFGS[arch], batch_norm).eval()
            path = tmp_path_factory.mktemp("torchvision") / f"{arch}{'_bn' * batch_norm}.pth"
            torch.save(model.state_dict(), path)
            made[arch, batch_norm] = (str(path), model)
        return made[arch, batch_norm]

    return get


@pytest.mark.torch
@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_converted_weights_give_torchvisions_activations(arch, torchvision_file, tmp_path, capsys):
    from tests.conftest import reference

    torch = reference("torch")
    source, model = torchvision_file(arch)
    out = tmp_path / f"{arch}.npz"
    argv = [f"--arch={arch}", f"--torch_weights={source}", f"--out={out}"]
    assert convert_vgg.main(argv) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}")
    params = vgg.load_vgg(str(out), arch)

    images = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    names = _names(CFGS[arch])
    ours = vgg.VGG(arch).apply({"params": params}, jnp.asarray(images), tuple(names))
    assert sorted(ours) == sorted(names)
    normalised = ((images + 1) / 2 - MEAN) / STD
    x = torch.from_numpy(normalised.transpose(0, 3, 1, 2).astype(np.float32))
    with torch.no_grad():
        for name, module in zip(names, model.features, strict=True):
            x = module(x)
            expected = x.numpy().transpose(0, 2, 3, 1)
            scale = np.abs(expected).max()
            np.testing.assert_allclose(
                ours[name], expected, rtol=0, atol=2e-5 * scale, err_msg=name
            )


@pytest.mark.torch
@pytest.mark.parametrize(
    "given, batch_norm, arch, reason",
    [
        ("vgg16", False, "vgg19", r"holds vgg16 weights, not vgg19 \(pass --arch=vgg16\)"),
        ("vgg16", True, "vgg16", r"holds a VGG with BatchNorm .*vgg16-397923af\.pth"),
    ],
)
def test_converter_refuses_another_network(
    given, batch_norm, arch, reason, torchvision_file, tmp_path, capsys
):
    source, _ = torchvision_file(given, batch_norm)
    out = tmp_path / "out.npz"
    argv = [f"--arch={arch}", f"--torch_weights={source}", f"--out={out}"]
    assert convert_vgg.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {source}: ") and error.count("\n") == 1
    assert re.search(reason, error)
    assert not out.exists()


def _zeros(arch: str) -> dict[str, np.ndarray]:
    return {key: np.zeros(shape, np.float32) for key, shape in vgg.param_shapes(arch).items()}


def test_load_vgg_says_what_is_wrong_and_how_to_convert(tmp_path):
    absent = str(tmp_path / "vgg19.npz")
    command = (
        "python -m cnngen_jax.commands.convert_vgg --arch=vgg19 "
        f"--torch_weights=vgg19-dcbb9e9d.pth --out={absent}`"
    )
    with pytest.raises(UserError, match="does not exist") as missing:
        vgg.load_vgg(absent, "vgg19")
    assert command in str(missing.value)

    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="cannot read .*convert_vgg --arch=vgg19"):
        vgg.load_vgg(str(tmp_path / "garbage.npz"), "vgg19")

    vgg16 = str(tmp_path / "vgg16.npz")
    vgg.save_vgg(_zeros("vgg16"), "vgg16", vgg16)
    assert vgg.load_vgg(vgg16, "vgg16")["conv5_3"]["kernel"].shape == (3, 3, 512, 512)
    with pytest.raises(UserError, match="holds vgg16 weights, not vgg19; .*--arch=vgg19"):
        vgg.load_vgg(vgg16, "vgg19")

    wrong = _zeros("vgg16")
    wrong["conv1_1/kernel"] = np.zeros((3, 3, 1, 64), np.float32)
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(UserError, match=r"not vgg16 weights \(.*wrong shape \['conv1_1/kernel'\]"):
        vgg.load_vgg(str(tmp_path / "wrong.npz"), "vgg16")


def test_vgg_stops_at_the_deepest_requested_layer_and_repeats_grey_images():
    grey = jax.random.uniform(jax.random.key(0), (2, 16, 16, 1), minval=-1, maxval=1)
    model = vgg.VGG("vgg19")
    params = model.init(jax.random.key(1), grey, ("relu2_1", "conv1_2"))["params"]
    assert sorted(params) == ["conv1_1", "conv1_2", "conv2_1"]
    features = model.apply({"params": params}, grey, ("relu2_1", "conv1_2"))
    assert sorted(features) == ["conv1_2", "relu2_1"]
    rgb = model.apply({"params": params}, jnp.repeat(grey, 3, axis=-1), ("relu2_1", "conv1_2"))
    assert all(np.array_equal(features[k], rgb[k]) for k in features)
    with pytest.raises(UserError, match=r"vgg19 has no layer \['relu5_5'\]"):
        model.apply({"params": params}, grey, ("relu5_5",))


def _gram64(features: np.ndarray) -> np.ndarray:
    """pytorch/examples' gram_matrix, in float64 on NCHW."""
    n, h, w, c = features.shape
    f = features.astype(np.float64).transpose(0, 3, 1, 2).reshape(n, c, h * w)
    return f @ f.transpose(0, 2, 1) / (c * h * w)


def _random_features(rng, batch: int) -> dict[str, np.ndarray]:
    shapes = {"relu1_2": (16, 16, 8), "relu2_2": (8, 8, 16), "relu3_3": (4, 4, 32)}
    shapes["relu4_3"] = (2, 2, 64)
    return {k: rng.normal(size=(batch, *s)).astype(np.float32) for k, s in shapes.items()}


@jax.jit
def _all_losses(outputs, targets, style):
    """Every loss of the module on one set of features (one compilation)."""
    weights = {"relu1_2": 0.5, "relu3_3": 2.0}
    return {
        "gram": perceptual.gram_matrix(outputs["relu3_3"]),
        "l1": perceptual.feature_loss(outputs, targets, weights, "l1"),
        "l2": perceptual.feature_loss(outputs, targets, weights, "l2"),
        "content": perceptual.content_loss(outputs, targets),
        "style": perceptual.style_loss(
            outputs, perceptual.gram_matrices(style, perceptual.JOHNSON_STYLE_WEIGHTS)
        ),
    }


def test_losses_match_float64_numpy():
    rng = np.random.default_rng(2)
    outputs, targets = _random_features(rng, 3), _random_features(rng, 3)
    style = _random_features(rng, 1)  # one style image for the whole batch
    got = _all_losses(outputs, targets, style)

    np.testing.assert_allclose(got["gram"], _gram64(outputs["relu3_3"]), rtol=1e-5, atol=1e-6)
    for criterion, power in (("l1", 1), ("l2", 2)):
        expected = sum(
            w * np.mean(np.abs(outputs[k].astype(np.float64) - targets[k]) ** power)
            for k, w in {"relu1_2": 0.5, "relu3_3": 2.0}.items()
        )
        np.testing.assert_allclose(got[criterion], expected, rtol=1e-5)
    difference = outputs["relu2_2"].astype(np.float64) - targets["relu2_2"]
    np.testing.assert_allclose(got["content"], np.mean(difference**2), rtol=1e-5)
    expected_style = sum(
        np.mean((_gram64(outputs[k]) - np.repeat(_gram64(style[k]), 3, axis=0)) ** 2)
        for k in ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    )
    np.testing.assert_allclose(got["style"], expected_style, rtol=1e-5)


def test_losses_treat_targets_as_constants_and_check_the_criterion():
    rng = np.random.default_rng(3)
    outputs, targets = _random_features(rng, 2), _random_features(rng, 2)
    weights = {"relu2_2": 1.0, "relu4_3": 0.1}

    def loss(outputs, targets):
        grams = perceptual.gram_matrices(targets, weights)
        return perceptual.feature_loss(outputs, targets, weights) + perceptual.style_loss(
            outputs, grams, weights
        )

    to_outputs, to_targets = jax.jit(jax.grad(loss, argnums=(0, 1)))(outputs, targets)
    assert all(np.abs(to_outputs[k]).max() > 0 for k in weights)
    assert all(not np.any(to_targets[k]) for k in to_targets)
    with pytest.raises(UserError, match="criterion must be one of"):
        perceptual.feature_loss(outputs, targets, weights, "fro")
