"""DCGAN layout, parameter counts and initialisation; the hand-written transposed-conv gradient."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax import lax

from cnngen_jax.errors import UserError
from cnngen_jax.models import get_model, layers

REFERENCE_64PX_RGB = {"generator": 3_576_704, "discriminator": 2_765_568}


def build(image_size: int, channels: int = 3, width: int = 64):
    config = ml_collections.ConfigDict(dict(latent_dim=100, g_width=width, d_width=width))
    return get_model("dcgan")(config, image_size, channels)


def init_shapes(models, image_size: int, channels: int):
    key = jax.random.key(0)
    g = jax.eval_shape(models.generator.init, key, jnp.zeros((2, 100)))
    d = jax.eval_shape(
        models.discriminator.init, key, jnp.zeros((2, image_size, image_size, channels))
    )
    return g, d


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("image_size", [16, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes(image_size, channels):
    models = build(image_size, channels)
    g_vars, d_vars = init_shapes(models, image_size, channels)
    images = jax.eval_shape(
        lambda v, z: models.generator.apply(v, z, train=False), g_vars, jnp.zeros((2, 100))
    )
    assert images.shape == (2, image_size, image_size, channels)
    logits = jax.eval_shape(
        lambda v, x: models.discriminator.apply(v, x, train=False), d_vars, images
    )
    assert logits.shape == (2,)


def torch_reference_counts() -> dict[str, int]:
    """The pytorch/examples dcgan networks (nz=100, ngf=ndf=64, nc=3), counted by PyTorch."""
    nn = pytest.importorskip("torch").nn
    generator = nn.Sequential(
        nn.ConvTranspose2d(100, 512, 4, 1, 0, bias=False), nn.BatchNorm2d(512), nn.ReLU(True),
        nn.ConvTranspose2d(512, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
        nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
        nn.ConvTranspose2d(64, 3, 4, 2, 1, bias=False), nn.Tanh(),
    )  # fmt: skip
    discriminator = nn.Sequential(
        nn.Conv2d(3, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),
        nn.Conv2d(128, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.LeakyReLU(0.2, True),
        nn.Conv2d(256, 512, 4, 2, 1, bias=False), nn.BatchNorm2d(512), nn.LeakyReLU(0.2, True),
        nn.Conv2d(512, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )  # fmt: skip
    return {
        "generator": sum(p.numel() for p in generator.parameters()),
        "discriminator": sum(p.numel() for p in discriminator.parameters()),
    }


def test_parameter_counts_equal_reference_at_64px():
    g_vars, d_vars = init_shapes(build(64), 64, 3)
    ours = {"generator": count(g_vars["params"]), "discriminator": count(d_vars["params"])}
    assert ours == REFERENCE_64PX_RGB
    assert ours == torch_reference_counts()


def test_initialisation_follows_the_reference():
    models = build(64)
    g_vars = models.generator.init(jax.random.key(1), jnp.zeros((1, 100)))
    d_vars = models.discriminator.init(jax.random.key(2), jnp.zeros((1, 64, 64, 3)))
    for variables in (g_vars, d_vars):
        for path, leaf in jax.tree_util.tree_flatten_with_path(variables["params"])[0]:
            name = jax.tree_util.keystr(path)
            assert "bias" not in name or "BN" in name, f"unexpected bias {name}"
            values = np.asarray(leaf).ravel()
            if name.endswith("['kernel']") and values.size > 4000:
                assert abs(values.mean()) < 2e-3 and abs(values.std() - 0.02) < 2e-3, name
            if name.endswith("['scale']") and values.size >= 256:
                assert abs(values.mean() - 1) < 5e-3 and abs(values.std() - 0.02) < 5e-3, name
            if name.endswith("['bias']"):
                assert np.all(values == 0), name
    assert "BN_0" not in d_vars["params"]  # no BatchNorm after the first discriminator layer


@pytest.mark.parametrize("image_size", [8, 24, 48, 256])
def test_unproducible_image_size_is_a_user_error(image_size):
    with pytest.raises(UserError, match="image_size"):
        build(image_size)


def stock_conv_transpose(x, kernel, stride, padding):
    """lax.conv_transpose in PyTorch's convention: flipped, swapped kernel, padding k - 1 - p."""
    k = kernel.shape[0]
    return lax.conv_transpose(
        x,
        kernel,
        (stride, stride),
        [(k - 1 - padding, k - 1 - padding)] * 2,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        transpose_kernel=True,
    )


@pytest.mark.parametrize("stride,padding,size", [(2, 1, 5), (1, 0, 1), (2, 0, 3), (3, 1, 4)])
def test_conv_transpose_gradients_match_autodiff_of_stock_formulation(stride, padding, size):
    kx, kk, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (2, size, size, 5))
    kernel = jax.random.normal(kk, (4, 4, 3, 5))
    ours = layers.conv_transpose(x, kernel, stride, padding)
    reference = stock_conv_transpose(x, kernel, stride, padding)
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-5)
    cotangent = jax.random.normal(kg, ours.shape)

    def loss(fn):
        return lambda x, k: jnp.sum(fn(x, k, stride, padding) * cotangent)

    ours_grads = jax.grad(loss(layers.conv_transpose), argnums=(0, 1))(x, kernel)
    stock_grads = jax.grad(loss(stock_conv_transpose), argnums=(0, 1))(x, kernel)
    for a, b in zip(ours_grads, stock_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_conv_transpose_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5, 6)).astype(np.float32)
    torch_weight = rng.normal(size=(6, 4, 4, 4)).astype(np.float32)  # (in, out, kh, kw)
    kernel = torch_weight.transpose(2, 3, 1, 0)
    ours = layers.conv_transpose(jnp.asarray(x), jnp.asarray(kernel), 2, 1)
    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    tw = torch.tensor(torch_weight, requires_grad=True)
    reference = torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1)
    np.testing.assert_allclose(ours, reference.detach().numpy().transpose(0, 2, 3, 1), atol=1e-4)
    cotangent = rng.normal(size=reference.shape).astype(np.float32)
    (reference * torch.tensor(cotangent)).sum().backward()
    gx, gk = jax.grad(
        lambda x, k: jnp.sum(layers.conv_transpose(x, k, 2, 1) * cotangent.transpose(0, 2, 3, 1)),
        argnums=(0, 1),
    )(jnp.asarray(x), jnp.asarray(kernel))
    np.testing.assert_allclose(gx, tx.grad.numpy().transpose(0, 2, 3, 1), atol=1e-4)
    np.testing.assert_allclose(gk, tw.grad.numpy().transpose(2, 3, 1, 0), atol=1e-4)


def test_unknown_model_names_the_setting_and_the_choices():
    with pytest.raises(UserError, match=r"config\.model\.name.*dcgan"):
        get_model("stylegan9")
