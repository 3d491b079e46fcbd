"""The convolution layers: each implementation (oneDNN on CPU, XLA's) against autodiff of the
stock `lax` formulations and against PyTorch; per-platform dispatch; batch-sharded partitioning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export, lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from cnngen_jax.kernels import onednn
from cnngen_jax.models import layers
from tests.conftest import reference

# (stride, padding, input size): the DCGAN's layers, sizes the stride does not divide, and a
# kernel as large as the input.
GEOMETRIES = [(2, 1, 8), (2, 1, 7), (1, 0, 4), (2, 0, 5), (3, 2, 9), (1, 1, 3)]


@pytest.fixture(params=["onednn", "xla"])
def implementation(request, monkeypatch):
    """Runs a test once with the oneDNN kernels and once with XLA's convolutions."""
    if request.param == "xla":
        monkeypatch.setattr(onednn, "available", lambda: False)
    return request.param


def test_onednn_kernels_build_and_load_here():
    # requirements.txt installs oneDNN and this machine has a C++ compiler: the fast path must be
    # the one the rest of the suite exercises, not a silent fallback.
    assert onednn.available()


def stock_conv(x, kernel, stride, padding):
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), [(padding, padding)] * 2, dimension_numbers=layers._DIMENSIONS
    )


def stock_conv_transpose(x, kernel, stride, padding):
    """lax.conv_transpose in PyTorch's convention: flipped, swapped kernel, padding k - 1 - p."""
    k = kernel.shape[0]
    return lax.conv_transpose(
        x,
        kernel,
        (stride, stride),
        [(k - 1 - padding, k - 1 - padding)] * 2,
        dimension_numbers=layers._DIMENSIONS,
        transpose_kernel=True,
    )


def assert_same_map_and_gradients(ours, stock, x, kernel, stride, padding):
    forward = jax.jit(ours, static_argnums=(2, 3))(x, kernel, stride, padding)
    np.testing.assert_allclose(forward, stock(x, kernel, stride, padding), rtol=1e-5, atol=1e-5)
    cotangent = jax.random.normal(jax.random.key(7), forward.shape)

    def loss(fn):
        return lambda x, k: jnp.sum(fn(x, k, stride, padding) * cotangent)

    ours_grads = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(x, kernel)
    stock_grads = jax.grad(loss(stock), argnums=(0, 1))(x, kernel)
    for a, b in zip(ours_grads, stock_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)

    # Second order, as a gradient penalty needs: d/d(x, k) of ||d/dx sum(tanh(f(x, k)) c)||^2.
    def penalty(fn):
        def input_gradient_norm(x, k):
            grad = jax.grad(lambda x: jnp.sum(jnp.tanh(fn(x, k, stride, padding)) * cotangent))
            return jnp.sum(jnp.square(grad(x)))

        return input_gradient_norm

    ours_second = jax.jit(jax.grad(penalty(ours), argnums=(0, 1)))(x, kernel)
    stock_second = jax.grad(penalty(stock), argnums=(0, 1))(x, kernel)
    for a, b in zip(ours_second, stock_second, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3 * float(jnp.abs(b).max()))


@pytest.mark.parametrize("stride,padding,size", GEOMETRIES)
def test_conv2d_matches_autodiff_of_stock_convolution(implementation, stride, padding, size):
    kx, kk = jax.random.split(jax.random.key(size), 2)
    x = jax.random.normal(kx, (3, size, size, 5))
    kernel = jax.random.normal(kk, (min(4, size + 2 * padding), min(4, size + 2 * padding), 5, 6))
    assert_same_map_and_gradients(layers.conv2d, stock_conv, x, kernel, stride, padding)


@pytest.mark.parametrize("stride,padding,size", GEOMETRIES)
def test_conv_transpose_matches_autodiff_of_stock_formulation(
    implementation, stride, padding, size
):
    kx, kk = jax.random.split(jax.random.key(size), 2)
    x = jax.random.normal(kx, (2, size, size, 5))
    kernel = jax.random.normal(kk, (4, 4, 3, 5))
    assert_same_map_and_gradients(
        layers.conv_transpose, stock_conv_transpose, x, kernel, stride, padding
    )


@pytest.mark.torch
def test_layers_match_pytorch(implementation):
    torch = reference("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 6, 5)).astype(np.float32)
    conv_weight = rng.normal(size=(7, 5, 4, 4)).astype(np.float32)  # Conv2d: (out, in, kh, kw)
    convt_weight = rng.normal(size=(5, 3, 4, 4)).astype(np.float32)  # ConvT: (in, out, kh, kw)
    cases = [
        (layers.conv2d, torch.nn.functional.conv2d, conv_weight),
        (layers.conv_transpose, torch.nn.functional.conv_transpose2d, convt_weight),
    ]
    for ours, torch_fn, weight in cases:
        tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
        tw = torch.tensor(weight, requires_grad=True)
        expected = torch_fn(tx, tw, stride=2, padding=1)
        cotangent = rng.normal(size=expected.shape).astype(np.float32)
        (expected * torch.tensor(cotangent)).sum().backward()
        kernel = jnp.asarray(weight.transpose(2, 3, 1, 0))  # both map by the same transpose

        def loss(x, k, ours=ours, cotangent=cotangent):
            return jnp.sum(ours(x, k, 2, 1) * cotangent.transpose(0, 2, 3, 1))

        y = ours(jnp.asarray(x), kernel, 2, 1)
        gx, gk = jax.grad(loss, argnums=(0, 1))(jnp.asarray(x), kernel)
        nhwc = (0, 2, 3, 1)
        np.testing.assert_allclose(y, expected.detach().numpy().transpose(nhwc), atol=1e-4)
        np.testing.assert_allclose(gx, tx.grad.numpy().transpose(nhwc), atol=1e-4)
        np.testing.assert_allclose(gk, tw.grad.numpy().transpose(2, 3, 1, 0), atol=1e-4)


def conv_layer_step(x, kernel):
    """A conv and a transposed conv with their gradients: all three oneDNN calls."""

    def loss(x, kernel):
        y = layers.conv2d(x, kernel, 2, 1)
        return jnp.sum(layers.conv_transpose(jnp.tanh(y), kernel, 2, 1) ** 2)

    return jax.grad(loss, argnums=(0, 1))(x, kernel)


def custom_calls(text: str) -> set[str]:
    return {name for name in onednn.TARGETS.values() if name in text}


@pytest.mark.parametrize("platform", ["cuda", "rocm", "tpu"])
def test_accelerators_lower_to_xla_convolutions(platform):
    args = (jnp.ones((2, 8, 8, 4)), jnp.ones((4, 4, 4, 4)))
    text = export.export(jax.jit(conv_layer_step), platforms=[platform])(*args).mlir_module()
    assert custom_calls(text) == set()
    assert "stablehlo.convolution" in text
    assert custom_calls(jax.jit(conv_layer_step).lower(*args).as_text()) == set(
        onednn.TARGETS.values()
    )  # this CPU


def test_accelerator_hosts_never_build_or_load_onednn(monkeypatch):
    def unexpected():
        raise AssertionError("onednn.available() called on an accelerator host")

    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(onednn, "available", unexpected)
    args = (jnp.ones((2, 8, 8, 4)), jnp.ones((4, 4, 4, 4)))
    fresh = jax.jit(lambda x, k: conv_layer_step(x, k))  # not a cached trace of an earlier test
    assert custom_calls(fresh.lower(*args).as_text()) == set()


def test_bfloat16_uses_xla_convolutions():
    args = (jnp.ones((2, 8, 8, 4), jnp.bfloat16), jnp.ones((4, 4, 4, 4), jnp.bfloat16))
    assert custom_calls(jax.jit(conv_layer_step).lower(*args).as_text()) == set()


def test_sharded_batch_runs_per_device_without_gathering():
    mesh = Mesh(np.array(jax.devices()), ("data",))
    kx, kk = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, (2 * len(jax.devices()), 8, 8, 4))
    kernel = jax.random.normal(kk, (4, 4, 4, 4))
    sharded = jax.device_put(x, NamedSharding(mesh, P("data")))
    step = jax.jit(conv_layer_step)
    compiled = step.lower(sharded, kernel).compile().as_text()
    assert custom_calls(compiled) == set(onednn.TARGETS.values())
    assert "all-gather" not in compiled  # each device convolves its own rows
    for a, b in zip(step(sharded, kernel), conv_layer_step(x, kernel), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(jnp.max(jnp.abs(b))))
