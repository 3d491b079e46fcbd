"""DCGAN layout, parameter counts and initialisation."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from cnngen_jax.errors import UserError
from cnngen_jax.models import ModelSpec, get_model
from tests.conftest import reference

REFERENCE_64PX_RGB = {"generator": 3_576_704, "discriminator": 2_765_568}


def build(image_size: int, channels: int = 3, width: int = 64):
    config = ml_collections.ConfigDict(
        dict(latent_dim=100, g_width=width, d_width=width, spectral_norm=False, conditioning="none")
    )
    return get_model("dcgan", "gan")(config, ModelSpec(image_size, channels))


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
    logits, class_logits = jax.eval_shape(
        lambda v, x: models.discriminator.apply(v, x, train=False), d_vars, images
    )
    assert logits.shape == (2,) and class_logits is None


def torch_reference_counts() -> dict[str, int]:
    """The pytorch/examples dcgan networks (nz=100, ngf=ndf=64, nc=3), counted by PyTorch."""
    nn = reference("torch").nn
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


@pytest.mark.torch
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


def test_unknown_model_names_the_setting_and_the_choices():
    with pytest.raises(UserError, match=r"config\.model\.name.*dcgan"):
        get_model("stylegan9", "gan")
