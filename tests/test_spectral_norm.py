"""Spectral normalisation: a float64 NumPy power iteration, and PyTorch's
`torch.nn.utils.spectral_norm` on the same weights and vectors, over several training steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cnngen_jax.models.layers import Conv, Dense, Embed
from cnngen_jax.models.spectral_norm import COLLECTION
from tests.conftest import reference


def numpy_power_iteration(matrix, u, v, steps: int):
    """`steps` training-mode passes of PyTorch's algorithm in float64: (u, v, sigma)."""
    matrix, u, v = (np.asarray(a, np.float64) for a in (matrix, u, v))
    for _ in range(steps):
        v = matrix.T @ u
        v /= max(np.linalg.norm(v), 1e-12)
        u = matrix @ v
        u /= max(np.linalg.norm(u), 1e-12)
    return u, v, u @ matrix @ v


def test_dense_follows_the_power_iteration_and_converges_to_the_top_singular_value():
    layer = Dense(5, spectral_norm=True)
    x = jax.random.normal(jax.random.key(1), (3, 7))
    variables = layer.init(jax.random.key(0), x)
    u0, v0 = variables[COLLECTION]["u"], variables[COLLECTION]["v"]
    assert u0.shape == (5,) and v0.shape == (7,)  # (out, in): PyTorch's layout
    np.testing.assert_allclose([np.linalg.norm(u0), np.linalg.norm(v0)], [1, 1], rtol=1e-6)
    kernel = np.asarray(variables["params"]["kernel"])
    for steps in (1, 2, 3):
        y, updates = layer.apply(variables, x, mutable=[COLLECTION])
        variables = {**variables, **updates}
        u, v, sigma = numpy_power_iteration(kernel.T, u0, v0, steps)
        np.testing.assert_allclose(updates[COLLECTION]["u"], u, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(updates[COLLECTION]["v"], v, rtol=1e-5, atol=1e-6)
        want = np.asarray(x, np.float64) @ (kernel / sigma)
        np.testing.assert_allclose(y, want + np.asarray(variables["params"]["bias"]), rtol=1e-5)
    # Evaluation (collection immutable): no iteration, the stored vectors are used as they are.
    y_eval = layer.apply(variables, x)
    np.testing.assert_allclose(y_eval, y, rtol=1e-6)
    for _ in range(50):
        _, updates = layer.apply(variables, x, mutable=[COLLECTION])
        variables = {**variables, **updates}
    _, _, sigma = numpy_power_iteration(
        kernel.T, variables[COLLECTION]["u"], variables[COLLECTION]["v"], 1
    )
    np.testing.assert_allclose(sigma, np.linalg.svd(kernel, compute_uv=False)[0], rtol=1e-4)


def _flax_layer(kind: str):
    """(our layer, its input, its PyTorch twin, the input's map to PyTorch's layout)."""
    torch = reference("torch")
    nn = torch.nn
    if kind == "conv":
        ours = Conv(6, 3, stride=2, padding=1, spectral_norm=True)
        theirs = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        x = np.random.default_rng(0).normal(size=(2, 7, 7, 4)).astype(np.float32)
        return ours, x, theirs, lambda x: x.transpose(0, 3, 1, 2)
    if kind == "dense":
        ours, theirs = Dense(6, spectral_norm=True), nn.Linear(9, 6)
        x = np.random.default_rng(0).normal(size=(4, 9)).astype(np.float32)
        return ours, x, theirs, lambda x: x
    ours, theirs = Embed(10, 6, spectral_norm=True), nn.Embedding(10, 6)
    x = np.array([3, 1, 4, 1, 5, 9], np.int32)
    return ours, x, theirs, lambda x: x.astype(np.int64)


def _from_nchw(y: np.ndarray) -> np.ndarray:
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["conv", "dense", "embed"])
def test_matches_pytorch_spectral_norm_over_training_steps(kind):
    torch = reference("torch")
    ours, x, theirs, to_torch = _flax_layer(kind)
    theirs = torch.nn.utils.spectral_norm(theirs)
    variables = ours.init(jax.random.key(0), x)
    weight_name = {"conv": "kernel", "dense": "kernel", "embed": "embedding"}[kind]
    # Ours -> theirs: same weight (and bias), same vectors.
    params = variables["params"]
    with torch.no_grad():
        theirs.weight_orig.copy_(torch.tensor(_torch_weight(kind, np.asarray(params[weight_name]))))
        if "bias" in params:
            theirs.bias.copy_(torch.tensor(np.asarray(params["bias"])))
        theirs.weight_u.copy_(torch.tensor(np.asarray(variables[COLLECTION]["u"])))
        theirs.weight_v.copy_(torch.tensor(np.asarray(variables[COLLECTION]["v"])))
    rng = np.random.default_rng(1)
    theirs.train()
    for _ in range(3):
        y_torch = theirs(torch.tensor(to_torch(x)))
        cotangent = rng.normal(size=y_torch.shape).astype(np.float32)
        theirs.zero_grad()
        (y_torch * torch.tensor(cotangent)).sum().backward()

        def loss(params, variables=variables, cotangent=cotangent):
            y, updates = ours.apply({**variables, "params": params}, x, mutable=[COLLECTION])
            return jnp.sum(y * _from_nchw(cotangent)), (y, updates)

        (_, (y, updates)), grads = jax.value_and_grad(loss, has_aux=True)(variables["params"])
        variables = {**variables, **updates}
        np.testing.assert_allclose(y, _from_nchw(y_torch.detach().numpy()), rtol=1e-4, atol=1e-5)
        for name in ("u", "v"):
            np.testing.assert_allclose(
                variables[COLLECTION][name], getattr(theirs, f"weight_{name}").numpy(), atol=1e-5
            )
        np.testing.assert_allclose(
            _torch_weight(kind, np.asarray(grads[weight_name])),
            theirs.weight_orig.grad.numpy(),
            rtol=1e-4,
            atol=1e-5,
        )
    theirs.eval()  # no power iteration: the stored vectors, as ours without a mutable collection
    with torch.no_grad():
        y_torch = theirs(torch.tensor(to_torch(x))).numpy()
    np.testing.assert_allclose(ours.apply(variables, x), _from_nchw(y_torch), rtol=1e-4, atol=1e-5)


def _torch_weight(kind: str, ours: np.ndarray) -> np.ndarray:
    """Our stored weight in PyTorch's layout."""
    if kind == "conv":
        return ours.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    return ours.T if kind == "dense" else ours
