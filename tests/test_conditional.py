"""Class conditioning: the layers against NumPy on the same weights, what labels do to generated
images, the class grid's layout and the settings' checks. (cGAN-PD against PyTorch is in
test_gan_models.py; the conditional metrics in test_evaluate.py; training on 1 and 8 devices and
exact resume through the contract tests.)"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax.data import DatasetInfo
from cnngen_jax.errors import UserError
from cnngen_jax.images import make_grid
from cnngen_jax.models.conditioning import ConditionalBatchNorm, discriminator_head
from cnngen_jax.tasks import create_task
from tests.conftest import KEY, init_state, tiny_config

DIGITS = DatasetInfo("digits", 1, 10)
CLASSES = 10


def test_conditional_batch_norm_is_per_class_gain_and_bias_on_masked_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(6, 3, 3, 4)).astype(np.float32)
    labels = np.array([0, 2, 1, 2, 0, 1])
    mask = np.array([1, 1, 1, 1, 0, 0], bool)  # statistics of the first four rows only
    layer = ConditionalBatchNorm(num_classes=3, train=True)
    variables = layer.init(KEY, x, labels, None)
    table = rng.normal(size=(3, 8)).astype(np.float32)
    variables = {**variables, "params": {"embedding": table}}
    got, _ = layer.apply(variables, x, labels, mask[:, None, None, None], mutable=["batch_stats"])

    kept = x[mask].astype(np.float64)
    mean, var = kept.mean(axis=(0, 1, 2)), kept.var(axis=(0, 1, 2))
    gain, bias = table[labels, :4], table[labels, 4:]
    want = (x - mean) / np.sqrt(var + 1e-5) * gain[:, None, None] + bias[:, None, None]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    initial = layer.init(KEY, x, labels, None)["params"]["embedding"]  # gains ~1, biases 0
    assert np.all(initial[:, 4:] == 0) and abs(np.mean(initial[:, :4]) - 1) < 0.05


class Head(nn.Module):
    conditioning: str

    @nn.compact
    def __call__(self, features, logits, labels):
        init = nn.initializers.normal(1.0)
        settings = dict(num_classes=CLASSES, spectral_norm=False, kernel_init=init)
        return discriminator_head(
            features, labels, logits, conditioning=self.conditioning, **settings
        )


@pytest.mark.parametrize("conditioning", ["none", "projection", "acgan"])
def test_discriminator_heads_match_their_formulas(conditioning):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(5, 7)).astype(np.float32)
    logits = rng.normal(size=(5,)).astype(np.float32)
    labels = np.array([0, 9, 3, 3, 1])
    head = Head(conditioning)
    variables = head.init(KEY, features, logits, labels)
    got_logits, got_classes = head.apply(variables, features, logits, labels)
    params = variables.get("params", {})
    if conditioning == "projection":  # Miyato & Koyama: linear(h) + <embed(y), h>
        embedding = np.asarray(params["ClassEmbed"]["embedding"])
        want = logits + np.sum(embedding[labels] * features, axis=1)
        np.testing.assert_allclose(got_logits, want, rtol=1e-5)
    else:
        np.testing.assert_array_equal(got_logits, logits)
    if conditioning == "acgan":
        kernel, bias = (np.asarray(params["ClassHead"][k]) for k in ("kernel", "bias"))
        np.testing.assert_allclose(got_classes, features @ kernel + bias, rtol=1e-5, atol=1e-6)
    else:
        assert got_classes is None


@pytest.fixture(scope="module", params=["cdcgan", "cvae"])
def conditional_task(request):
    """A tiny conditional GAN and VAE, with the GAN's class gains spread apart (at
    initialisation they are all about 1, so classes would barely differ)."""
    task = create_task(tiny_config(family=request.param), DIGITS)
    state = init_state(task)
    if request.param == "cdcgan":
        spread = jax.tree_util.tree_map_with_path(
            lambda path, x: x * 5 if "embedding" in str(path) else x, state.g_ema_params
        )
        state = state.replace(g_ema_params=spread)
    return task, state


def test_labels_change_the_images_of_the_same_latent(conditional_task):
    task, state = conditional_task
    key = jax.random.key(3)  # the same four latents
    sevens = task.generate(state, key, 4, np.full(4, 7))
    threes = task.generate(state, key, 4, np.full(4, 3))
    assert np.abs(np.asarray(sevens) - np.asarray(threes)).mean() > 1e-3


def test_each_generated_image_depends_on_its_own_latent_and_label_only(conditional_task):
    task, state = conditional_task
    key = jax.random.key(4)
    mixed = task.generate(state, key, 8, np.arange(8))
    # The same latents, all asking for class 5 but the first: row 0 must not move.
    others = task.generate(state, key, 8, np.array([0, 5, 5, 5, 5, 5, 5, 5]))
    np.testing.assert_allclose(mixed[0], others[0], atol=1e-5)


def test_class_grid_rows_are_classes_and_columns_share_latents(conditional_task):
    task, state = conditional_task
    examples = {"image": jnp.zeros((16, 16, 16, 1)), "label": jnp.arange(16) % CLASSES}
    grid = jax.jit(task.images)(state, examples, KEY)["class_grid"]
    columns = 16 // CLASSES
    assert grid.shape == (CLASSES, columns, 16, 16, 1)
    latents = jax.random.normal(jax.random.fold_in(KEY, 1), (columns, 16))  # the grid's latents
    fours = np.full(columns, 4)
    row = task.decode(state, latents, fours)  # a GAN's images, a VAE's decoder means
    np.testing.assert_allclose(grid[4], row, atol=1e-5)
    assert not np.allclose(grid[0], grid[1])  # rows differ by class

    picture = make_grid(np.asarray(grid))
    cell = 16 + 2  # image plus padding
    assert picture.shape == (CLASSES * cell + 2, columns * cell + 2, 3)
    last = make_grid(np.asarray(grid[-1:, -1:]))[2:-2, 2:-2]  # the last row's last column
    np.testing.assert_array_equal(picture[9 * cell + 2 : 10 * cell, -cell:-2], last)


@pytest.mark.parametrize(
    "family, settings, expected",
    [
        ("cdcgan", {"model.conditioning": "film"}, "config.model.conditioning"),
        ("cvae", {"model.conditioning": "projection"}, "one of: none, concat"),
        ("cgan_pd", {"dataset": "celeb_a"}, "needs class labels"),
    ],
)
def test_bad_conditioning_settings_name_the_setting(family, settings, expected):
    config = tiny_config(family=family, **settings)
    info = DatasetInfo(config.dataset, 1, None if config.dataset == "celeb_a" else 10)
    with pytest.raises(UserError, match=expected):
        create_task(config, info)


def test_labels_outside_the_classes_or_for_an_unconditional_model_are_refused(conditional_task):
    task, state = conditional_task
    with pytest.raises(UserError, match="label 10 .* outside .* 0..9"):
        task.generate(state, KEY, 2, np.array([3, 10]))
    with pytest.raises(UserError, match="must be 3 class numbers"):
        task.generate(state, KEY, 3, np.array([3, 1]))
    unconditional = create_task(tiny_config(), DIGITS)
    with pytest.raises(UserError, match="unconditional"):
        unconditional.generate(init_state(unconditional), KEY, 2, np.array([1, 2]))
