"""The SNGAN ResNets (Mimicry's layout, and its class-conditional cGAN-PD) and the standard CNN
of Miyato et al. against PyTorch modules built as the references build them
(tests/torch_gan_references.py): parameter counts at the published widths, and forward passes on
copied weights and spectral-norm vectors."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cnngen_jax.models import ModelSpec, get_model
from cnngen_jax.models.spectral_norm import COLLECTION as SPECTRAL
from tests.conftest import reference

# (model, image size, g_width, d_width, conditioning) -> (G, D) parameters, as PyTorch counts
# the reference modules (checked against them below when PyTorch is installed). Conditional
# models have 10 classes; "projection" on sngan32 is Mimicry's cGAN-PD.
PUBLISHED_WIDTHS = {
    ("sngan32", 32, 256, 128, "none"): (4_276_739, 1_053_825),
    ("sngan32", 32, 256, 128, "projection"): (4_304_387, 1_055_105),
    ("wgan_gp32", 32, 256, 128, "none"): (4_276_739, 1_053_825),
    ("sngan64", 64, 1024, 1024, "none"): (12_220_675, 10_141_441),
    ("sndcgan", 32, 64, 64, "none"): (3_812_355, 2_935_873),
}
CLASSES = 10


def build(name: str, g_width: int, d_width: int, image_size: int, conditioning: str = "none"):
    config = ml_collections.ConfigDict(
        dict(
            name=name,
            latent_dim=128,
            g_width=g_width,
            d_width=d_width,
            spectral_norm=True,
            conditioning=conditioning,
        )
    )
    num_classes = 0 if conditioning == "none" else CLASSES
    return get_model(name, "gan")(config, ModelSpec(image_size, 3, num_classes=num_classes))


def init(models, image_size: int, abstract: bool = False, conditional: bool = False):
    z, x = jnp.zeros((2, models.latent_dim)), jnp.zeros((2, image_size, image_size, 3))
    y = jnp.zeros((2,), jnp.int32) if conditional else None
    run = jax.eval_shape if abstract else (lambda f, *args: f(*args))
    g = run(functools.partial(models.generator.init, train=False), jax.random.key(0), z, y)
    d = run(functools.partial(models.discriminator.init, train=False), jax.random.key(1), x, y)
    return g, d


def count(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("case", list(PUBLISHED_WIDTHS))
def test_parameter_counts_at_the_published_widths(case):
    name, size, g_width, d_width, conditioning = case
    models = build(name, g_width, d_width, size, conditioning)
    g, d = init(models, size, abstract=True, conditional=conditioning != "none")
    assert (count(g["params"]), count(d["params"])) == PUBLISHED_WIDTHS[case]


def torch_twins(name: str, g_width: int, d_width: int, conditioning: str = "none"):
    refs = reference("tests.torch_gan_references")
    if conditioning == "projection":  # cGAN-PD
        return (
            refs.CGANPDGenerator32(CLASSES, 128, g_width),
            refs.CGANPDDiscriminator32(CLASSES, d_width),
        )
    if name == "sngan32":
        return refs.SNGANGenerator32(128, g_width), refs.SNGANDiscriminator32(d_width)
    if name == "sngan64":
        return refs.SNGANGenerator64(128, g_width), refs.SNGANDiscriminator64(d_width)
    return (
        refs.StandardCNNGenerator(nz=128, widths=(8 * g_width, 4 * g_width, 2 * g_width, g_width)),
        refs.StandardCNNDiscriminator(widths=tuple(m * d_width for m in (1, 1, 2, 2, 4, 4, 8))),
    )


@pytest.mark.torch
@pytest.mark.parametrize("case", [c for c in PUBLISHED_WIDTHS if c[0] != "wgan_gp32"])
def test_parameter_counts_equal_the_pytorch_references(case):
    reference("torch")
    name, _, g_width, d_width, conditioning = case
    refs = reference("tests.torch_gan_references")
    twins = torch_twins(name, g_width, d_width, conditioning)
    counts = tuple(refs.count_parameters(net) for net in twins)
    assert counts == PUBLISHED_WIDTHS[case]


def _spatial(h: int, w: int, c: int):
    """Reorders PyTorch's (C, H, W) flattening, as a column index map, to ours (H, W, C)."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)


def flax_from_torch(torch_module, flax_variables, order: list[tuple[str, str, str]]):
    """Copies `order`'s (torch module path, flax module path, kind) into `flax_variables`."""
    modules = dict(torch_module.named_modules())
    variables = jax.tree.map(np.asarray, flax_variables)

    def at(collection: str, path: str) -> dict:
        node = variables[collection]
        for part in path.split("/"):
            node = node[part]
        return node

    for torch_path, flax_path, kind in order:
        m = modules[torch_path]
        params, columns = at("params", flax_path), slice(None)
        if kind == "cbn":  # ConditionalBatchNorm2d: the (classes, 2C) table, then the stats
            params["embedding"] = m.embed.weight.detach().numpy()
            stats = at("batch_stats", f"{flax_path}/BatchNorm_0")
            stats["mean"], stats["var"] = m.bn.running_mean.numpy(), m.bn.running_var.numpy()
            continue
        weight = (m.weight_orig if hasattr(m, "weight_orig") else m.weight).detach().numpy()
        if kind == "bn":
            params["scale"], params["bias"] = weight, m.bias.detach().numpy()
            stats = at("batch_stats", flax_path)
            stats["mean"], stats["var"] = m.running_mean.numpy(), m.running_var.numpy()
            continue
        if kind == "embed":  # the projection's class embedding, (classes, features) in both
            params["embedding"] = weight
            spectral = at(SPECTRAL, flax_path)
            spectral["u"], spectral["v"] = m.weight_u.numpy(), m.weight_v.numpy()
            continue
        if kind == "conv" or kind == "convt":
            params["kernel"] = weight.transpose(2, 3, 1, 0)
        elif kind.startswith("dense"):
            if kind != "dense":  # "dense:C,H,W": (C, H, W) features on one side
                c, h, w = map(int, kind.split(":")[1].split(","))
                columns = _spatial(h, w, c)
            if kind.startswith("dense_out"):  # G's first layer: output features reordered
                params["kernel"] = weight.T[:, columns]
                params["bias"] = m.bias.detach().numpy()[columns]
                continue
            params["kernel"] = weight.T[columns]
        params["bias"] = m.bias.detach().numpy()
        if hasattr(m, "weight_u"):  # v indexes the input features, reordered like the kernel
            spectral = at(SPECTRAL, flax_path)
            v = m.weight_v.numpy()
            spectral["u"], spectral["v"] = m.weight_u.numpy(), v[columns] if kind != "conv" else v
    return variables


def resnet_order(name: str, conditional: bool = False) -> tuple[list, list]:
    g_blocks = 3 if name == "sngan32" else 4
    g = [("l1", "Dense_0", "dense_out:{c},4,4")]
    norm = "cbn" if conditional else "bn"
    for i in range(g_blocks):
        t, f = f"block{i + 2}", f"GeneratorBlock_{i}"
        g += [(f"{t}.b1", f"{f}/BN_0", norm), (f"{t}.c1", f"{f}/Conv_0", "conv")]
        g += [(f"{t}.b2", f"{f}/BN_1", norm), (f"{t}.c2", f"{f}/Conv_1", "conv")]
        g += [(f"{t}.c_sc", f"{f}/Shortcut", "conv")]
    last = g_blocks + 2
    g += [(f"b{last}", "BN_out", "bn"), (f"c{last}", "Conv_0", "conv")]
    d = []
    d_blocks = 4 if name == "sngan32" else 5
    for i in range(d_blocks):
        t, f = f"block{i + 1}", f"Block_{i}"
        d += [(f"{t}.c1", f"{f}/Conv_0", "conv"), (f"{t}.c2", f"{f}/Conv_1", "conv")]
        if i < 2 or name == "sngan64":
            d += [(f"{t}.c_sc", f"{f}/Shortcut", "conv")]
    d += [(f"l{d_blocks + 1}", "Dense_0", "dense")]
    if conditional:
        d += [("l_y", "ClassEmbed", "embed")]
    return g, d


def standard_order() -> tuple[list, list]:
    g = [("linear", "Dense_0", "dense_out:{c},4,4")]
    for i in range(3):  # main: (ConvTranspose2d, BatchNorm2d, ReLU) x 3, Conv2d, Tanh
        g += [(f"main.{3 * i}", f"ConvT_{i}", "convt"), (f"main.{3 * i + 1}", f"BN_{i}", "bn")]
    g += [("main.9", "Conv_0", "conv")]
    d = [(f"main.{2 * i}", f"Conv_{i}", "conv") for i in range(7)]  # (Conv2d, LeakyReLU) x 7
    d += [("linear", "Dense_0", "dense:{c},4,4")]
    return g, d


@pytest.mark.torch
@pytest.mark.parametrize(
    "name,size,conditioning",
    [("sngan32", 32, "none"), ("sngan32", 32, "projection"), ("sngan64", 64, "none"),
     ("sndcgan", 32, "none")],
)  # fmt: skip
def test_forward_passes_equal_pytorch_on_copied_weights(name, size, conditioning):
    torch = reference("torch")
    g_width, d_width = 16, 16  # narrow: the same layout
    conditional = conditioning != "none"
    torch.manual_seed(0)
    g_torch, d_torch = torch_twins(name, g_width, d_width, conditioning)
    models = build(name, g_width, d_width, size, conditioning)
    g_vars, d_vars = init(models, size, conditional=conditional)
    if name == "sndcgan":
        g_order, d_order = standard_order()
    else:
        g_order, d_order = resnet_order(name, conditional)
    g_channels = g_width if name == "sngan32" else (g_width * 8 if name == "sndcgan" else g_width)
    g_order = [(t, f, k.format(c=g_channels)) for t, f, k in g_order]
    d_order = [(t, f, k.format(c=8 * d_width)) for t, f, k in d_order]
    for module in g_torch.modules():  # gains and biases away from 1 and 0: classes differ
        if isinstance(module, torch.nn.Embedding):
            torch.nn.init.normal_(module.weight, 1.0, 0.5)
    g_vars = flax_from_torch(g_torch, g_vars, g_order)
    d_vars = flax_from_torch(d_torch, d_vars, d_order)

    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 128)).astype(np.float32)
    y = np.array([3, 1, 4, 1]) if conditional else None
    y_args = (torch.tensor(y),) if conditional else ()
    g_torch.train()  # batch statistics, as ours in training mode
    want = g_torch(torch.tensor(z), *y_args).detach().numpy().transpose(0, 2, 3, 1)
    got, _ = models.generator.apply(g_vars, z, y, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(got, want, atol=2e-5)

    x = rng.uniform(-1, 1, size=(4, size, size, 3)).astype(np.float32)
    d_torch.eval()  # the stored u, v, as ours when the collection is not mutable
    with torch.no_grad():
        want = d_torch(torch.tensor(x.transpose(0, 3, 1, 2)), *y_args).numpy().reshape(-1)
    got, _ = models.discriminator.apply(d_vars, x, y, train=True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
