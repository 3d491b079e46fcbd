"""Shared fixtures: eight fake CPU devices in-process, a prepared digits directory, tiny configs,
and the optional PyTorch references."""

import contextlib
import fcntl
import importlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from unittest import mock

# Tests are dominated by XLA compilation, not by running the tiny programs: LLVM's cheapest code
# generation compiles them ~20% faster, and XLA:CPU's classic elemental emitters instead of its
# MLIR fusion emitters about twice as fast again (the same HLO, the same programs run as fast).
# Set before the backend starts, for this process and (through `run_main` and the processes that
# inherit the environment) every subprocess.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {FAST_COMPILE}".strip()

import jax  # noqa: E402
import jax.extend.core as jax_core  # noqa: E402

# Before any backend starts: in-process tests see 8 CPU devices. Subprocesses are unaffected.
jax.config.update("jax_num_cpu_devices", 8)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnngen_jax import data, evaluators, parallel, random_streams, train  # noqa: E402
from cnngen_jax.models import vgg  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cnngen_jax.configs import (  # noqa: E402
    acgan,
    cdcgan,
    cgan_pd,
    cvae,
    dcgan,
    espcn,
    inpainting,
    sndcgan,
    sngan,
    srgan,
    srresnet,
    style_transfer,
    vae,
    wgan_gp,
)

# Tests comparing against PyTorch or torch-fidelity carry `@pytest.mark.torch` and get the module
# from `reference()`. Without the references installed they are skipped; CI installs them and
# sets CNNGEN_REQUIRE_REFERENCES=1, so there a missing reference fails instead of skipping.
REFERENCE_INSTALL = "pip install torch==2.13.0 && pip install --no-deps torch-fidelity==0.4.0"


REQUIRED = os.environ.get("CNNGEN_REQUIRE_REFERENCES") == "1"


def reference(name: str):
    """The optional reference module `name` (e.g. "torch"), or a skip saying how to install it."""
    if REQUIRED:
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f"{name} is not installed ({REFERENCE_INSTALL})")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
    """A TFDS directory with the embedded datasets prepared, and random VGG19 and VGG16 weights
    in the converted format (`random_vgg_weights`) for the perceptual and style losses."""
    path = str(tmp_path_factory.mktemp("tfds"))
    for name in ("digits", "photos"):
        data.ensure_prepared(name, path)
    rng = np.random.default_rng(0)
    for arch in ("vgg19", "vgg16"):
        weights = {
            name: rng.normal(0, np.sqrt(2 / np.prod(s[:-1])) if len(s) == 4 else 0.01, s)
            for name, s in vgg.param_shapes(arch).items()
        }
        vgg.save_vgg(weights, arch, os.path.join(path, random_vgg_weights(arch)))
    return path


def random_vgg_weights(arch: str) -> str:
    """The file of random `arch` weights in the data_dir fixture's directory."""
    return f"random_{arch}.npz"


VGG_WEIGHTS = random_vgg_weights("vgg19")


def shared_dir(tmp_path_factory, name: str) -> pathlib.Path:
    """The directory `name` of this session, shared by its xdist workers (each has its own
    temporary directory below a common one)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / name
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """The persistent XLA cache of this session, shared by its xdist workers: a program one
    worker compiled, the other reuses."""
    return str(shared_dir(tmp_path_factory, "xla_cache"))


TINY = {
    "image_size": 16,
    "batch_size": 16,
    "num_train_steps": 6,
    "log_every_steps": 1,
    "sample_every_steps": 3,
    "checkpoint_every_steps": 3,
    "num_sample_images": 16,
    "input_threads": 1,
    "model.latent_dim": 16,
}
# Each registered recipe, shrunk (the ResNets and the standard CNN produce 32x32 only).
RESNET = {"image_size": 32, "model.g_width": 8, "model.d_width": 8}
DCGAN = {"model.g_width": 8, "model.d_width": 8}
VAE = {"model.width": 8, "evals.elbo.every_steps": 2, "evals.elbo.iw_samples": 4}
NO_EVAL = {"evals.sample_quality.every_steps": 0}
SUPER_RESOLUTION = {"model.width": 8, "model.num_blocks": 1, "evals.restoration.every_steps": 2}
FAMILIES = {
    "dcgan": (dcgan, DCGAN),
    "vae": (vae, VAE),
    "sngan": (sngan, RESNET),
    "wgan_gp": (wgan_gp, RESNET),
    "sndcgan": (sndcgan, {"image_size": 32, "model.g_width": 4, "model.d_width": 4}),
    "cdcgan": (cdcgan, {**DCGAN, **NO_EVAL}),
    "acgan": (acgan, {**DCGAN, **NO_EVAL}),
    "cgan_pd": (cgan_pd, {**RESNET, **NO_EVAL}),
    "cvae": (cvae, {**VAE, "evals.sample_quality.every_steps": 0}),
    "espcn": (espcn, {"image_size": 24, "model.width": 8, "evals.restoration.every_steps": 2}),
    "srresnet": (srresnet, SUPER_RESOLUTION),
    "srgan": (
        srgan,
        # VGG19 to its second block: the same code as conv5_4, at a fraction of the compute.
        {
            **SUPER_RESOLUTION,
            "image_size": 32,
            "discriminator.width": 8,
            "perceptual_layers": {"relu2_2": 1.0},
        },
    ),
    "inpainting": (
        inpainting,
        {"model.width": 8, "model.depth": 2, "adversarial_weight": 0.01, "discriminator.width": 8},
    ),
    "style_transfer": (
        style_transfer,
        # VGG16 to its second block (relu4_3 is the same code, at several times the compute).
        # Loss weights 1e5 times smaller (same ratio): at 1e5 and 1e10 Adam's moments reach
        # ~1e4 and differ between 1 and 8 devices by float rounding beyond the contract's
        # absolute tolerance. Learning rate 1e-4: the gradients of the biases before instance
        # norms cancel to rounding noise, and Adam moves them +-lr a step whatever its size.
        {
            "model.width": 4,
            "model.num_blocks": 1,
            "style_size": 16,
            "style_layers": {"relu1_2": 1.0, "relu2_2": 1.0},
            "content_weight": 1.0,
            "style_weight": 1e5,
            "optimizer.learning_rate": 1e-4,
        },
    ),
}


def _declares(config, key: str) -> bool:
    *parents, leaf = key.split(".")
    for parent in parents:
        config = config.get(parent)
    return config is not None and leaf in config


def _settings(family: str, data_dir: str, cache_dir: str, overrides: dict) -> dict:
    config = FAMILIES[family][0].get_config()
    tiny = {key: value for key, value in TINY.items() if _declares(config, key)}
    shrink = dict(FAMILIES[family][1])
    if "vgg_weights" in config:
        shrink["vgg_weights"] = os.path.join(data_dir, random_vgg_weights(config.vgg))
    return {**tiny, **shrink, "data_dir": data_dir, "compilation_cache_dir": cache_dir, **overrides}


def tiny_config(data_dir: str = "", cache_dir: str = "", family: str = "dcgan", **overrides):
    """configs/{family}.py shrunk to 16x16 and a few steps (overrides use dotted keys)."""
    config = FAMILIES[family][0].get_config()
    for key, value in _settings(family, data_dir, cache_dir, overrides).items():
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return config


def evaluator_of(config, task, name: str, data_dir: str = ""):
    """The evaluator `config.evals.<name>` describes, built for `task` as the trainer does."""
    context = evaluators.Context(name, config, task, data_dir)
    return evaluators.build(config.evals[name], context)[0]


def without_evaluation(config):
    """`config` with none of its evaluators running during training (every_steps 0)."""
    for name in config.evals:
        config.evals[name].every_steps = 0
    return config


def tiny_flags(data_dir: str, cache_dir: str, family: str = "dcgan", **overrides) -> list[str]:
    """The same settings as `tiny_config`, as --config.KEY=VALUE flags for cnngen_jax.main."""
    settings = _settings(family, data_dir, cache_dir, overrides)
    return [f"--config.{k}={v}" for k, v in settings.items()]


def start_main(args: list[str], devices: int = 1) -> subprocess.Popen:
    """`python -m cnngen_jax.main ARGS` started in a fresh process, from the repository root."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = f"{FAST_COMPILE} --xla_force_host_platform_device_count={devices}"
    return subprocess.Popen(
        [sys.executable, "-m", "cnngen_jax.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    """Waits for a `start_main` process; its result as `subprocess.run` gives it."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def wait_until(process: subprocess.Popen, ready, what: str, timeout: float = 120) -> None:
    """Polls `ready()` while `process` runs; fails if it exits or `timeout` passes first."""
    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None and time.time() < deadline, f"no {what} appeared"
        time.sleep(0.02)


def run_main(
    args: list[str], timeout: float = 300, devices: int = 1
) -> subprocess.CompletedProcess:
    """`python -m cnngen_jax.main ARGS` in a fresh process, from the repository root."""
    return finish(start_main(args, devices), timeout)


@contextlib.contextmanager
def one_device() -> Iterator[None]:
    """The trainer's mesh on one of the eight fake devices, for tests that need a trained run
    rather than the multi-device path (the contract tests check that): tiny runs compile and
    run about twice as fast."""
    make_mesh = parallel.make_mesh
    with mock.patch.object(
        parallel, "make_mesh", lambda devices=None: make_mesh(jax.devices()[:1])
    ):
        yield


TIMING = {"steps_per_sec", "images_per_sec"}  # metrics that differ between equal runs


def read_metrics(workdir) -> list[dict]:
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def output_dir(tmp_path, occupied: bool):
    """`tmp_path/out` for a command's --out: absent, or (occupied) a directory already holding
    one file of the user's, `keep.txt`, which the command must leave alone."""
    out = tmp_path / "out"
    if occupied:
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    return out


class TinyRuns:
    """Workdirs of two-step runs (tiny configs, no held-out evaluation) by family, each trained
    on first use by whichever xdist worker asks first (the other waits for it) and shared by
    every test of the session: trained models for the commands that use one. Tests read them
    and write elsewhere."""

    def __init__(self, data_dir: str, cache_dir: str, root: pathlib.Path):
        self.data_dir, self.cache_dir, self.root = data_dir, cache_dir, root

    def __getitem__(self, family: str) -> str:
        workdir, done = self.root / family, self.root / f"{family}.done"
        with open(self.root / f"{family}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if not done.exists():
                shutil.rmtree(workdir, ignore_errors=True)  # an attempt that failed midway
                self._train(family, str(workdir))
                done.touch()
        return str(workdir)

    def _train(self, family: str, workdir: str) -> None:
        config = tiny_config(self.data_dir, self.cache_dir, family=family, num_train_steps=2)
        without_evaluation(config)
        with one_device():
            train.train_and_evaluate(config, workdir)

    def get(self, name: str, default: str) -> str:
        """The run of family `name`, or `default` where `name` is none (a stand-in for a
        workdir without a run in the bad-input tests)."""
        return self[name] if name in FAMILIES else default


@pytest.fixture(scope="session")
def tiny_runs(data_dir, cache_dir, tmp_path_factory) -> TinyRuns:
    return TinyRuns(data_dir, cache_dir, shared_dir(tmp_path_factory, "tiny_runs"))


KEY = jax.random.key(0)  # for calling a task's functions directly


def init_state(task, seed: int = 0):
    """The task's initial state for `seed`, as the trainer derives it (with the configs'
    default initialisation PRNG, which compiles several times faster than threefry)."""
    key = random_streams.seed_key(seed, random_streams.INIT_STREAM, "rbg")
    return train.with_pretrained(task, jax.jit(task.init_state)(key))


def traced_step(task, state, batch: dict, seed: int = 0, num_seeds: int = 1):
    """The trainer's keyed step (`train.keyed_train_step`) traced once for the shapes of host
    arrays `state` and `batch`, as a function that replays the traced program: `run_steps` jits
    the very same program on any devices. (Tracing a model's step costs about as much as
    compiling it; replaying its jaxpr a fraction.)"""
    closed, out_shapes = jax.make_jaxpr(
        train.keyed_train_step(task, seed, num_seeds), return_shape=True
    )(state, batch)
    out_tree = jax.tree.structure(out_shapes)

    def step(state, batch):
        leaves = jax.tree.leaves((state, batch))
        return jax.tree.unflatten(out_tree, jax_core.jaxpr_as_fun(closed)(*leaves))

    return step


def run_steps(
    task, state, batches: list, devices: list, seed: int = 0, num_seeds: int = 1, step=None
):
    """The trainer's keyed, mesh-jitted step (or `step`, from `traced_step` with the same seeds)
    from `state` (`num_seeds` stacked replicas) over `batches` (host arrays of one process) on
    `devices`: (final state, per-step metrics) on the host."""
    mesh = parallel.make_mesh(devices)
    replicated = parallel.replicated(mesh)
    state = jax.device_put(state, replicated)
    stacked = parallel.stacked_axes(task.batches_per_step)
    step = jax.jit(
        step or train.keyed_train_step(task, seed, num_seeds),
        in_shardings=(replicated, parallel.batch_sharded(mesh, stacked)),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    history = []
    for batch in batches:
        size = batch["image"].shape[task.batches_per_step > 1]
        global_batch = parallel.global_batch(batch, mesh, size, stacked)
        state, metrics = step(state, global_batch)
        history.append(parallel.to_host(metrics))
    return parallel.to_host(state), history
