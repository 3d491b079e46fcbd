"""The restoration networks (cnngen_jax/models/restoration.py) against PyTorch modules built as
their sources build them (tests/torch_restoration_references.py): parameter counts at the
published sizes, and outputs on copied weights (and spectral-norm vectors); the U-Net, our own
design, by its contract."""

import functools

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cnngen_jax.errors import UserError
from cnngen_jax.models import ModelSpec, get_model
from cnngen_jax.models.restoration import pixel_shuffle
from cnngen_jax.models.spectral_norm import COLLECTION as SPECTRAL
from tests.conftest import reference

# (model, in channels, out channels, scale, width, num_blocks) -> parameters. ESPCN: the paper's
# (f1, n1, f2, n2, f3) = (5, 64, 3, 32, 3) on the luma channel at x3; MSRResNet: BasicSR's
# defaults (srresnet_arch.py: num_feat 64, num_block 16, upscale 4, 3 channels).
RESTORERS = {
    ("espcn", 1, 1, 3, 64, 0): 22_729,
    ("msrresnet", 3, 3, 4, 64, 16): 1_517_571,
}
# (model, in channels, image size, width) -> parameters. VGG-style: BasicSR's 128x128 network
# (num_feat 64); SN-PatchGAN: DeepFill v2's (cnum 64) on the image and its mask.
DISCRIMINATORS = {
    ("vgg_style", 3, 128, 64): 14_499_401,
    ("patch_gan", 4, 256, 64): 5_946_816,
}


def model_config(width: int, num_blocks: int = 0, depth: int = 0) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        dict(width=width, num_blocks=num_blocks, depth=depth, spectral_norm=True)
    )


def restorer(name: str, in_channels: int, out_channels: int, scale: int, width: int, blocks=0):
    builder = get_model(name, "restoration")
    # image_size: not read by the restorers
    spec = ModelSpec(image_size=64, channels=out_channels, in_channels=in_channels, scale=scale)
    return builder(model_config(width, blocks, depth=2), spec)


def discriminator(name: str, in_channels: int, image_size: int, width: int):
    builder = get_model(name, "restoration_discriminator")
    return builder(model_config(width), ModelSpec(image_size, channels=in_channels))


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def abstract_params(module, shape, **kwargs):
    init = functools.partial(module.init, **kwargs)
    return jax.eval_shape(init, jax.random.key(0), jnp.zeros(shape))["params"]


@pytest.mark.parametrize("case", list(RESTORERS) + list(DISCRIMINATORS))
def test_parameter_counts_at_the_published_sizes(case):
    c_in = case[1]
    if case in RESTORERS:
        params = abstract_params(restorer(*case), (1, 8, 8, c_in))
    else:
        size = case[2]
        params = abstract_params(discriminator(*case), (1, size, size, c_in), train=False)
    assert count(params) == {**RESTORERS, **DISCRIMINATORS}[case]


def torch_twin(refs, case):
    """The reference module for a RESTORERS / DISCRIMINATORS key."""
    name = case[0]
    if name == "espcn":
        _, c_in, c_out, scale, width, _ = case
        return refs.ESPCN(scale, c_in, c_out, width)
    if name == "msrresnet":
        _, c_in, c_out, scale, width, blocks = case
        return refs.MSRResNet(c_in, c_out, width, blocks, scale)
    _, c_in, size, width = case
    if name == "vgg_style":
        return refs.VGGStyleDiscriminator(c_in, width, size)
    return refs.SNPatchGANDiscriminator(c_in, width)


@pytest.mark.torch
@pytest.mark.parametrize("case", list(RESTORERS) + list(DISCRIMINATORS))
def test_parameter_counts_equal_the_pytorch_references(case):
    reference("torch")
    refs = reference("tests.torch_restoration_references")
    net = torch_twin(refs, case)
    assert sum(p.numel() for p in net.parameters()) == {**RESTORERS, **DISCRIMINATORS}[case]


@pytest.mark.torch
@pytest.mark.parametrize("r", [2, 3])
def test_pixel_shuffle_is_torchs(r):
    torch = reference("torch")
    x = np.random.default_rng(r).normal(size=(2, 5, 4, 3 * r * r)).astype(np.float32)
    want = torch.nn.PixelShuffle(r)(torch.tensor(x.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_array_equal(pixel_shuffle(jnp.asarray(x), r), want.transpose(0, 2, 3, 1))


def copy_from_torch(net, abstract, names: dict[str, str], flatten_chw=None) -> dict:
    """Variables shaped as `abstract` (from `jax.eval_shape` of init) holding, at each flax
    module path (a/b) of `names`, the weights of the torch submodule it names: conv, linear,
    BatchNorm (with running statistics) or spectral-norm conv (with u, v). `flatten_chw`: (flax
    path, (C, H, W)) of a linear layer over maps that torch flattens as (C, H, W), we (H, W, C).
    Fails unless every variable is filled with its shape."""
    modules = dict(net.named_modules())
    filled = {}

    def put(collection: str, path: str, **arrays) -> None:
        for leaf, array in arrays.items():
            filled[(collection, *path.split("/"), leaf)] = np.asarray(array, np.float32)

    for flax_path, torch_path in names.items():
        m = modules[torch_path]
        weight = (m.weight_orig if hasattr(m, "weight_orig") else m.weight).detach().numpy()
        if weight.ndim == 4:
            put("params", flax_path, kernel=weight.transpose(2, 3, 1, 0))
        elif weight.ndim == 2:
            rows = slice(None)
            if flatten_chw and flatten_chw[0] == flax_path:
                c, h, w = flatten_chw[1]
                rows = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
            put("params", flax_path, kernel=weight.T[rows])
        else:  # BatchNorm2d
            put("params", flax_path, scale=weight)
            put("batch_stats", flax_path, mean=m.running_mean, var=m.running_var)
        if m.bias is not None:
            put("params", flax_path, bias=m.bias.detach())
        if hasattr(m, "weight_u"):
            put(SPECTRAL, flax_path, u=m.weight_u, v=m.weight_v)
    wanted = flax.traverse_util.flatten_dict(abstract)
    assert filled.keys() == wanted.keys()
    for key, array in filled.items():
        assert array.shape == wanted[key].shape, key
    return flax.traverse_util.unflatten_dict(filled)


def restorer_names(name: str, scale: int, blocks: int) -> dict[str, str]:
    if name == "espcn":
        return {"conv1": "first_part.0", "conv2": "first_part.2", "conv3": "last_part.0"}
    names = {m: m for m in ("conv_first", "upconv1", "conv_hr", "conv_last")}
    names |= {"upconv2": "upconv2"} if scale == 4 else {}
    for i in range(blocks):
        names |= {f"body_{i}/conv{j}": f"body.{i}.conv{j}" for j in (1, 2)}
    return names


@pytest.mark.torch
@pytest.mark.parametrize(
    "name,scale", [("espcn", 3), ("msrresnet", 2), ("msrresnet", 3), ("msrresnet", 4)]
)
def test_restorers_equal_pytorch_on_copied_weights(name, scale):
    torch = reference("torch")
    refs = reference("tests.torch_restoration_references")
    torch.manual_seed(scale)
    case = (name, 3, 3, scale, 8, 2)
    net = torch_twin(refs, case)
    with torch.no_grad():  # BasicSR's 0.1-scaled init leaves the branches near zero: widen them
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    x = np.random.default_rng(scale).uniform(-1, 1, size=(2, 16, 12, 3)).astype(np.float32)
    model = restorer(*case)
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.asarray(x))
    variables = copy_from_torch(net, abstract, restorer_names(name, scale, blocks=2))
    with torch.no_grad():
        want = net(torch.tensor(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    got = model.apply(variables, x)
    assert got.shape == (2, 16 * scale, 12 * scale, 3) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale", [3, 4])
def test_msrresnet_initialisation_is_basicsrs(scale):
    """kaiming_normal (fan_in) x 0.1 on every convolution, zero biases: std 0.1 sqrt(2 / fan_in)."""
    params = restorer("msrresnet", 3, 3, scale, 32, 2).init(
        jax.random.key(1), jnp.zeros((1, 8, 8, 3))
    )["params"]
    flat = flax.traverse_util.flatten_dict(params)
    kernels = [value for path, value in flat.items() if path[-1] == "kernel"]
    assert len(kernels) == 4 + 2 * 2 + (scale == 4)
    for kernel in kernels:
        kh, kw, fan_in, _ = kernel.shape
        expected = 0.1 * np.sqrt(2.0 / (kh * kw * fan_in))
        assert abs(float(np.std(kernel)) / expected - 1) < 0.1
    for path, value in flat.items():
        if path[-1] == "bias":
            np.testing.assert_array_equal(value, 0.0)


def discriminator_names(name: str) -> dict[str, str]:
    if name == "patch_gan":
        return {f"conv{i}": f"conv{i}" for i in range(1, 7)}
    layers = ["0_1"] + [f"{i}_{j}" for i in range(1, 5) for j in range(2)]
    names = {f"{kind}{n}": f"{kind}{n}" for n in layers for kind in ("conv", "bn")}
    return names | {"conv0_0": "conv0_0", "linear1": "linear1", "linear2": "linear2"}


@pytest.mark.torch
@pytest.mark.parametrize("name,size", [("vgg_style", 64), ("patch_gan", 96)])
def test_discriminators_equal_pytorch_on_copied_weights(name, size):
    torch = reference("torch")
    refs = reference("tests.torch_restoration_references")
    torch.manual_seed(size)
    c_in, width = 4, 8
    net = torch_twin(refs, (name, c_in, size, width))
    x = np.random.default_rng(size).uniform(-1, 1, size=(4, size, size, c_in)).astype(np.float32)
    x_torch = torch.tensor(x.transpose(0, 3, 1, 2))
    with torch.no_grad():
        for m in net.modules():  # BatchNorm: affine away from identity, statistics of this batch
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(0, 0.3)
                m.momentum = 1.0
        for _ in range(10):  # training passes; spectral norm's u, v approach the singular vectors
            net(x_torch)
    net.eval()  # stored statistics; stored u, v with no power iteration
    model = discriminator(name, c_in, size, width)
    abstract = jax.eval_shape(
        functools.partial(model.init, train=False), jax.random.key(0), jnp.asarray(x)
    )
    flatten = ("linear1", (8 * width, size // 32, size // 32))
    variables = copy_from_torch(net, abstract, discriminator_names(name), flatten)
    with torch.no_grad():
        want = net(x_torch).numpy()
    got = model.apply(variables, x, train=False)
    if name == "patch_gan":
        want = want.transpose(0, 2, 3, 1)
        assert got.shape == (4, 2, 2, 4 * width)  # ceil(96 / 2^6) = 2
    else:
        assert got.shape == (4, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_unet_is_a_pure_map_of_masked_images_at_any_allowed_size():
    model = restorer("unet", 4, 3, 1, 8)  # depth 2
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(3, 16, 24, 4)).astype(np.float32)
    variables = model.init(jax.random.key(0), jnp.asarray(x))
    assert set(variables) == {"params"}  # no batch statistics or other state
    output_layer = variables["params"]["to_image"]["kernel"]
    assert not np.any(output_layer)  # zero: the network starts as no correction at all
    variables["params"]["to_image"]["kernel"] = rng.normal(0, 0.1, output_layer.shape)
    out = model.apply(variables, x)
    assert out.shape == (3, 16, 24, 3) and out.dtype == jnp.float32
    # Each image's output depends on that image only, not on the rest of the batch.
    np.testing.assert_allclose(model.apply(variables, x[1:2]), out[1:2], rtol=1e-5, atol=1e-6)
    other = rng.uniform(-1, 1, size=(1, 32, 8, 4)).astype(np.float32)
    assert model.apply(variables, other).shape == (1, 32, 8, 3)
    with pytest.raises(ValueError, match="divisible by 4, got 16x18"):
        model.apply(variables, x[:, :, :18])


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: restorer("espcn", 3, 3, 5, 8), "espcn.*not config.scale=5"),
        (lambda: restorer("msrresnet", 3, 3, 1, 8), "msrresnet.*not config.scale=1"),
        (lambda: restorer("msrresnet", 4, 3, 2, 8), "input as output channels, got 4 and 3"),
        (lambda: restorer("unet", 4, 3, 2, 8), "needs scale 1, not config.scale=2"),
        (lambda: discriminator("vgg_style", 3, 48, 8), "config.image_size divisible by 32"),
    ],
)
def test_builders_reject_what_they_cannot_build(build, message):
    with pytest.raises(UserError, match=message):
        build()
