"""The FID Inception-v3 network (the 2015-12-05 TensorFlow graph) in Flax Linen, NHWC.

This is the network pytorch-fid and torch-fidelity use, not torchvision's Inception-v3: its
average pools ignore padding (`count_include_pad=False`), the last block pools with a max, and
the classifier has 1008 outputs. Keeping the graph identical is what makes FID/KID/IS numbers
comparable with published ones.

Input resizing differs between the tools, and the difference shows in FID at small image sizes:

- pytorch-fid: `F.interpolate(mode='bilinear', align_corners=False)` (half-pixel centres).
- torch-fidelity: `interpolate_bilinear_2d_like_tensorflow1x(align_corners=False)`, the
  TensorFlow 1.x `tf.image.resize_bilinear` sampling (source = destination * in/out, no
  half-pixel offset), i.e. what the original TF FID/IS code fed the graph.

We follow torch-fidelity (`resize_like_tf1`), then normalise (x - 128) / 128.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

INPUT_SIZE = 299
NUM_CLASSES = 1008


def _tf1_sampling(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low/high source indices and float32 weights, computed exactly as torch-fidelity does."""
    scale = np.float32(in_size / out_size)
    src = np.arange(out_size, dtype=np.float32) * scale
    lo = src.astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, src - lo.astype(np.float32)


def resize_like_tf1(images: jax.Array, size: int) -> jax.Array:
    """Bilinear resize of float NHWC images as torch-fidelity does it: bit for bit when run
    eagerly on CPU, within float32 rounding under `jit` (where XLA may fuse multiply-adds).

    Shapes are static, so the gather indices and weights are numpy constants.
    """
    y_lo, y_hi, dy = _tf1_sampling(images.shape[1], size)
    x_lo, x_hi, dx = _tf1_sampling(images.shape[2], size)
    rows_lo, rows_hi = images[:, y_lo], images[:, y_hi]
    dx = dx[None, None, :, None]
    top = rows_lo[:, :, x_lo] + (rows_lo[:, :, x_hi] - rows_lo[:, :, x_lo]) * dx
    bottom = rows_hi[:, :, x_lo] + (rows_hi[:, :, x_hi] - rows_hi[:, :, x_lo]) * dx
    return top + (bottom - top) * dy[None, :, None, None]


# Full float32 on every backend: the reduced-precision matmuls some GPUs use by default (TF32)
# would break parity with the reference implementations.
_PRECISION = jax.lax.Precision.HIGHEST


class Classifier(nn.Module):
    """The 1008-way fc layer, returning the logits without and with its bias."""

    @nn.compact
    def __call__(self, pool: jax.Array) -> tuple[jax.Array, jax.Array]:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (pool.shape[-1], NUM_CLASSES))
        bias = self.param("bias", nn.initializers.zeros, (NUM_CLASSES,))
        unbiased = jnp.matmul(pool, kernel, precision=_PRECISION)
        return unbiased, unbiased + bias


class BasicConv(nn.Module):
    """Convolution without bias, inference BatchNorm (eps 1e-3), ReLU."""

    features: int
    kernel: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        pad = [(self.padding[0], self.padding[0]), (self.padding[1], self.padding[1])]
        x = nn.Conv(
            self.features,
            self.kernel,
            strides=self.stride,
            padding=pad,
            use_bias=False,
            precision=_PRECISION,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _conv(features: int, kernel: int | tuple[int, int], name: str, **kwargs) -> BasicConv:
    kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
    return BasicConv(features, kernel, name=name, **kwargs)


def _avg_pool_same(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average that ignores the zero padding, as TensorFlow does."""
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_valid(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
    pool_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = _conv(64, 1, "branch1x1")(x)
        b5 = _conv(48, 1, "branch5x5_1")(x)
        b5 = _conv(64, 5, "branch5x5_2", padding=(2, 2))(b5)
        b3 = _conv(64, 1, "branch3x3dbl_1")(x)
        b3 = _conv(96, 3, "branch3x3dbl_2", padding=(1, 1))(b3)
        b3 = _conv(96, 3, "branch3x3dbl_3", padding=(1, 1))(b3)
        bp = _conv(self.pool_features, 1, "branch_pool")(_avg_pool_same(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = _conv(384, 3, "branch3x3", stride=2)(x)
        bd = _conv(64, 1, "branch3x3dbl_1")(x)
        bd = _conv(96, 3, "branch3x3dbl_2", padding=(1, 1))(bd)
        bd = _conv(96, 3, "branch3x3dbl_3", stride=2)(bd)
        return jnp.concatenate([b3, bd, _max_pool_valid(x)], axis=-1)


class InceptionC(nn.Module):
    channels_7x7: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c7 = self.channels_7x7
        b1 = _conv(192, 1, "branch1x1")(x)
        b7 = _conv(c7, 1, "branch7x7_1")(x)
        b7 = _conv(c7, (1, 7), "branch7x7_2", padding=(0, 3))(b7)
        b7 = _conv(192, (7, 1), "branch7x7_3", padding=(3, 0))(b7)
        bd = _conv(c7, 1, "branch7x7dbl_1")(x)
        bd = _conv(c7, (7, 1), "branch7x7dbl_2", padding=(3, 0))(bd)
        bd = _conv(c7, (1, 7), "branch7x7dbl_3", padding=(0, 3))(bd)
        bd = _conv(c7, (7, 1), "branch7x7dbl_4", padding=(3, 0))(bd)
        bd = _conv(192, (1, 7), "branch7x7dbl_5", padding=(0, 3))(bd)
        bp = _conv(192, 1, "branch_pool")(_avg_pool_same(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b3 = _conv(192, 1, "branch3x3_1")(x)
        b3 = _conv(320, 3, "branch3x3_2", stride=2)(b3)
        b7 = _conv(192, 1, "branch7x7x3_1")(x)
        b7 = _conv(192, (1, 7), "branch7x7x3_2", padding=(0, 3))(b7)
        b7 = _conv(192, (7, 1), "branch7x7x3_3", padding=(3, 0))(b7)
        b7 = _conv(192, 3, "branch7x7x3_4", stride=2)(b7)
        return jnp.concatenate([b3, b7, _max_pool_valid(x)], axis=-1)


class InceptionE(nn.Module):
    """Both E blocks; the second (`max_pool=True`) pools with a max, a quirk of the TF graph."""

    max_pool: bool

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b1 = _conv(320, 1, "branch1x1")(x)
        b3 = _conv(384, 1, "branch3x3_1")(x)
        b3 = jnp.concatenate(
            [
                _conv(384, (1, 3), "branch3x3_2a", padding=(0, 1))(b3),
                _conv(384, (3, 1), "branch3x3_2b", padding=(1, 0))(b3),
            ],
            axis=-1,
        )
        bd = _conv(448, 1, "branch3x3dbl_1")(x)
        bd = _conv(384, 3, "branch3x3dbl_2", padding=(1, 1))(bd)
        bd = jnp.concatenate(
            [
                _conv(384, (1, 3), "branch3x3dbl_3a", padding=(0, 1))(bd),
                _conv(384, (3, 1), "branch3x3dbl_3b", padding=(1, 0))(bd),
            ],
            axis=-1,
        )
        if self.max_pool:
            pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
        else:
            pooled = _avg_pool_same(x)
        bp = _conv(192, 1, "branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
    """uint8 NHWC RGB images of any size -> {'pool', 'logits_unbiased', 'logits'}.

    'pool' is the 2048-d feature for FID/KID/precision-recall. 'logits_unbiased' omits the fc
    bias, as the original Inception Score code (and torch-fidelity's IS) does; 'logits' has it.
    Submodule names follow the PyTorch state dict so weight conversion is mechanical.
    """

    @nn.compact
    def __call__(self, images: jax.Array) -> dict[str, jax.Array]:
        if images.dtype != jnp.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected uint8 NHWC RGB images, got {images.dtype}{images.shape}")
        x = resize_like_tf1(images.astype(jnp.float32), INPUT_SIZE)
        x = (x - 128) / 128
        x = _conv(32, 3, "Conv2d_1a_3x3", stride=2)(x)
        x = _conv(32, 3, "Conv2d_2a_3x3")(x)
        x = _conv(64, 3, "Conv2d_2b_3x3", padding=(1, 1))(x)
        x = _max_pool_valid(x)
        x = _conv(80, 1, "Conv2d_3b_1x1")(x)
        x = _conv(192, 3, "Conv2d_4a_3x3")(x)
        x = _max_pool_valid(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        for name, channels in _MIXED_6.items():
            x = InceptionC(channels, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(max_pool=False, name="Mixed_7b")(x)
        x = InceptionE(max_pool=True, name="Mixed_7c")(x)
        pool = jnp.mean(x, axis=(1, 2))
        logits_unbiased, logits = Classifier(name="fc")(pool)
        return {"pool": pool, "logits_unbiased": logits_unbiased, "logits": logits}


_MIXED_6 = {"Mixed_6b": 128, "Mixed_6c": 160, "Mixed_6d": 160, "Mixed_6e": 192}


def abstract_variables() -> dict:
    """Shapes and dtypes of the network's variables, without allocating them."""
    dummy = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.uint8)
    return jax.eval_shape(FIDInceptionV3().init, jax.random.key(0), dummy)
