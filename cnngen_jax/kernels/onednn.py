"""oneDNN convolutions for XLA:CPU, built on first use and registered as FFI targets.

XLA:CPU's own convolutions (YNNPACK or Eigen) run 2-5x slower than oneDNN's on the large-map,
narrow-channel layers of image generators, which makes a JAX DCGAN slower on a CPU than the
PyTorch one (which uses oneDNN). `onednn_conv.cc` exposes oneDNN's forward, backward-data and
backward-weights convolutions as three XLA FFI handlers; `models.layers` calls them on CPU for
float32 and keeps `lax.conv_general_dilated` everywhere else.

The shared library is compiled once per source / jaxlib / oneDNN version with the system C++
compiler (about 4 s) into `cache_dir()` against the `onednn-cpu-gomp` and
`onednn-devel-cpu-gomp` wheels from requirements.txt. When any of that is missing, `available()`
is False with one logged reason, and the layers use XLA's convolutions: slower, same results.
`CNNGEN_JAX_ONEDNN=0` turns the kernels off.
"""

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from cnngen_jax import files

SOURCE = Path(__file__).with_name("onednn_conv.cc")
TARGETS = {
    "forward": "CnngenConvForward",
    "backward_data": "CnngenConvBackwardData",
    "backward_weights": "CnngenConvBackwardWeights",
}
Shape = tuple[int, ...]
_RUNTIME, _HEADERS = "onednn-cpu-gomp", "onednn-devel-cpu-gomp"


def cache_dir() -> Path:
    """Where the compiled extension is cached, under `files.cache_home()` like every cache."""
    return Path(files.cache_home()) / "cnngen_jax" / "kernels"


def _wheel_file(distribution: str, suffix: str) -> Path:
    """A file that `distribution` installed, by the end of its path."""
    for file in metadata.files(distribution) or ():
        if str(file).endswith(suffix):
            return Path(file.locate()).resolve()
    raise FileNotFoundError(f"{distribution} installed no file ending in {suffix}")


def _build(library: Path, runtime: Path) -> None:
    """Compiles `SOURCE` into `library`, atomically (concurrent processes may race)."""
    include = _wheel_file(_HEADERS, "/oneapi/dnnl/dnnl.hpp").parents[2]
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise FileNotFoundError("no C++ compiler (c++ or g++, or $CXX)")
    library.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
        partial = Path(scratch) / library.name
        command = [
            compiler, "-O2", "-std=c++17", "-shared", "-fPIC", "-w",
            "-isystem", jax.ffi.include_dir(), "-isystem", str(include),
            str(SOURCE), "-o", str(partial),
            str(runtime), f"-Wl,-rpath,{runtime.parent}",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        os.replace(partial, library)


def _library_path(runtime: Path) -> Path:
    """Where the build for this source, these versions and this oneDNN (linked by path) lives."""
    versions = [metadata.version(name) for name in ("jaxlib", _RUNTIME, _HEADERS)]
    key = SOURCE.read_bytes() + repr((versions, str(runtime))).encode()
    return cache_dir() / f"cnngen_onednn_{hashlib.sha256(key).hexdigest()[:16]}.so"


@functools.cache
def available() -> bool:
    """Whether the oneDNN kernels are built, loaded and registered for the CPU platform."""
    if os.environ.get("CNNGEN_JAX_ONEDNN", "1") == "0":
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        runtime = _wheel_file(_RUNTIME, "/libdnnl.so.3")
        library = _library_path(runtime)
        if not library.exists():
            _build(library, runtime)
        handle = ctypes.cdll.LoadLibrary(str(library))
    except (OSError, RuntimeError, metadata.PackageNotFoundError) as error:
        logging.warning("oneDNN convolutions unavailable, using XLA's (slower on CPU): %s", error)
        return False
    for target in TARGETS.values():
        capsule = jax.ffi.pycapsule(getattr(handle, target))
        jax.ffi.register_ffi_target(target, capsule, platform="cpu")
    return True


# Einsum-like Shardy rules: the batch `n` may be sharded, nothing else. Backward weights sums
# over the batch, so a sharded batch ends in an all-reduce of the kernel gradient.
_SHARDING_RULES = {
    "forward": "n h w c, kh kw c o -> n oh ow o",
    "backward_data": "n oh ow o, kh kw c o -> n h w c",
    "backward_weights": "n h w c, n oh ow o -> kh kw c o",
}


def _unsharded_factors(rule: str) -> tuple[str, ...]:
    """Every factor but the batch, in order of first appearance (as Shardy requires)."""
    names = rule.replace(",", " ").replace("->", " ").split()
    return tuple(name for name in dict.fromkeys(names) if name != "n")


def _local_call(kind: str, shape: Shape, stride: int, padding: int, a: jax.Array, b: jax.Array):
    result = jax.ShapeDtypeStruct(shape, a.dtype)
    return jax.ffi.ffi_call(TARGETS[kind], result)(
        a, b, stride=np.int64(stride), padding=np.int64(padding)
    )


def _batch_axes(sharding: Any) -> Any:
    """The mesh axes that shard dimension 0 (the batch) of an operand, or None."""
    spec = getattr(sharding, "spec", ())
    return spec[0] if len(spec) else None


def _shardings(kind: str, mesh: Mesh, operands: Any) -> tuple[NamedSharding, tuple]:
    """(result, operands) shardings: batch as the first operand's, all else replicated."""
    batched = NamedSharding(mesh, P(_batch_axes(operands[0].sharding)))
    replicated = NamedSharding(mesh, P())
    if kind == "backward_weights":
        return replicated, (batched, batched)
    return batched, (batched, replicated)


def _partitioned(kind: str) -> Callable:
    """The FFI call of `kind` as an op that SPMD partitioning splits over the batch.

    Without this, XLA would gather a sharded batch onto every device and run the whole
    convolution there.
    """

    @functools.partial(custom_partitioning, static_argnums=(2, 3, 4))
    def op(a, b, shape, stride, padding):
        return _local_call(kind, shape, stride, padding, a, b)

    def partition(shape, stride, padding, mesh, operands, result):
        result_sharding, operand_shardings = _shardings(kind, mesh, operands)
        batch_axes = _batch_axes(operand_shardings[0])

        def lower(a, b):
            if kind == "backward_weights":
                local = _local_call(kind, shape, stride, padding, a, b)
                return local if batch_axes is None else jax.lax.psum(local, batch_axes)
            return _local_call(kind, (a.shape[0], *shape[1:]), stride, padding, a, b)

        return mesh, lower, result_sharding, operand_shardings

    def infer(shape, stride, padding, mesh, operands, result):
        return _shardings(kind, mesh, operands)[0]

    op.def_partition(
        partition,
        infer_sharding_from_operands=infer,
        sharding_rule=_SHARDING_RULES[kind],
        reduction_factors=("n",) if kind == "backward_weights" else (),
        need_replication_factors=_unsharded_factors(_SHARDING_RULES[kind]),
    )
    return op


_OPS = {kind: _partitioned(kind) for kind in TARGETS}


@functools.cache
def _vmappable(kind: str, shape: Shape, stride: int, padding: int) -> Callable:
    """The op of `kind` with a batching rule, so `jax.vmap` (e.g. over the replicas of
    `config.num_seeds`) can map it: a batched input against a shared kernel folds into the batch
    (one call); anything else runs replica after replica (`lax.map`), each at full size."""

    @jax.custom_batching.custom_vmap
    def op(a: jax.Array, b: jax.Array) -> jax.Array:
        return _OPS[kind](a, b, shape, stride, padding)

    @op.def_vmap
    def rule(axis_size: int, in_batched: list[bool], a: jax.Array, b: jax.Array):
        a_batched, b_batched = in_batched
        if kind != "backward_weights" and a_batched and not b_batched:
            folded = (axis_size * shape[0], *shape[1:])
            merged = a.reshape(axis_size * a.shape[1], *a.shape[2:])
            out = _vmappable(kind, folded, stride, padding)(merged, b)
            return out.reshape(axis_size, *shape), True
        a = a if a_batched else jnp.broadcast_to(a, (axis_size, *a.shape))
        b = b if b_batched else jnp.broadcast_to(b, (axis_size, *b.shape))
        return jax.lax.map(lambda operands: op(*operands), (a, b)), True

    return op


def conv_forward(
    x: jax.Array, kernel: jax.Array, out_shape: Shape, stride: int, padding: int
) -> jax.Array:
    """NHWC `x` convolved with HWIO `kernel`; float32 on CPU only."""
    return _vmappable("forward", tuple(out_shape), stride, padding)(x, kernel)


def conv_backward_data(
    grad: jax.Array, kernel: jax.Array, in_shape: Shape, stride: int, padding: int
) -> jax.Array:
    """The input gradient of `conv_forward` (the transposed convolution of `grad`)."""
    return _vmappable("backward_data", tuple(in_shape), stride, padding)(grad, kernel)


def conv_backward_weights(
    x: jax.Array, grad: jax.Array, kernel_shape: Shape, stride: int, padding: int
) -> jax.Array:
    """The kernel gradient of `conv_forward`."""
    return _vmappable("backward_weights", tuple(kernel_shape), stride, padding)(x, grad)
