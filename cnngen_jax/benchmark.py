"""Training speed of the project's own step, against a PyTorch reference where one exists.

    python -m cnngen_jax.benchmark [--out=bench.json] [--cases=dcgan-32-b128,vae]
                                   [--repeats=N] [--torch/--no-torch]

A case is `FAMILY[:PRESET][-SIZE-bBATCH][@KEY=VALUE...]`: the family's `configs/FAMILY.py` (at
its preset, image size and global batch, with config overrides), fed its embedded dataset (the
digits in place of catalog data, which may be absent), e.g. `dcgan-32-b128`, `vae`,
`sngan:cifar10-32-b64` (the published SNGAN widths, n_critic 5),
`sngan:cifar10-32-b64@model.spectral_norm=False` or `srresnet-64-b8` (MSRResNet x4 on crops of
the embedded photographs). Per case it measures:

* steady-state train iterations/s and images/s: the task's `train_step` jitted as
  `cnngen_jax.train` jits it (mesh shardings, donated state) and fed by the real Grain pipeline
  through `train.Run.train_batch`; after warm-up, the median of timed windows, each window
  whole steps blocking on the result. For the DCGAN (tests/torch_dcgan.py) and SNGAN-32
  (`SNGANIteration` of tests/torch_gan_references.py, Mimicry's layout and iteration) and
  MSRResNet (`MSRResNetIteration` of tests/torch_restoration_references.py) a PyTorch
  reference runs in the same process, contiguous and `channels_last`, its windows interleaved
  with JAX's (A B C A B C ...) so machine noise hits every implementation alike;
* in fresh subprocesses: the train step's compile time with an empty persistent compilation
  cache and again reusing it, wall time from process start to the first completed step and the
  RSS high-water mark (`ru_maxrss`) after a few steps, for JAX and for the faster PyTorch layout;
* the input pipeline's images/s alone, and again while a train step loop runs in this process.

Families whose config file is missing are skipped with a note. Machine noise is expected: the
JSON keeps every window and the load average before and after.
"""

import argparse
import ast
import dataclasses
import datetime
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flax
import jax
import jaxlib
import ml_collections

from cnngen_jax import data, train
from cnngen_jax.errors import UserError
from cnngen_jax.kernels import onednn

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CASES = ("dcgan-32-b64", "dcgan-32-b128", "dcgan-64-b64", "dcgan-64-b128", "vae")
_CASE = re.compile(
    r"(?P<family>[a-z_][a-z0-9_]*)(?::(?P<preset>[a-z0-9_]+))?(?:-(?P<size>\d+)-b(?P<batch>\d+))?"
    r"(?P<overrides>(?:@[a-z_.]+=[^@]+)*)"
)
_MIB = 1024  # ru_maxrss is in KiB on Linux
TORCH_LAYOUTS = {"torch": False, "torch_channels_last": True}
NOTES = (
    "PyTorch keeps its default thread count (torch.set_num_threads untouched: all cores); JAX "
    "uses XLA's default CPU thread pool.",
    "The PyTorch reference's G step also computes D's (unused) weight gradients, as "
    "pytorch/examples does; the JAX step does not.",
    "Fresh processes: JAX runs the trainer's path on the real pipeline; PyTorch runs the faster "
    "layout on a random batch. They are forked through sh so that ru_maxrss is their own.",
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long to measure; the defaults keep the full default run under ~10 minutes."""

    repeats: int = 5  # timed windows per implementation
    min_window_s: float = 1.0  # a window runs whole steps for at least this long
    warmup_steps: int = 1  # untimed steps before calibrating the window
    probe_steps: int = 2  # steps run by each start-up / memory subprocess
    pipeline_s: float = 2.0  # minimum length of each input-pipeline measurement
    torch: bool = True  # also run the PyTorch reference where the family has one
    subprocesses: bool = True  # the compile / start-up / memory measurements
    data_dir: str = ""  # as config.data_dir: '' is TFDS's default directory


# ---------------------------------------------------------------------------------------------
# Configs and the JAX training step, wired as cnngen_jax.train wires them.


def case_config(spec: str, data_dir: str = "") -> ml_collections.ConfigDict | None:
    """The config of case `spec`, or None (with a printed note) if its family has no config."""
    match = _CASE.fullmatch(spec)
    if not match:
        raise UserError(
            f"case {spec!r} is not FAMILY[:PRESET][-SIZE-bBATCH][@KEY=VALUE...], e.g. "
            "dcgan-32-b128 or sngan:cifar10-32-b64"
        )
    name = f"cnngen_jax.configs.{match['family']}"
    if importlib.util.find_spec(name) is None:
        print(f"note: skipping case {spec}: there is no config file {name}", flush=True)
        return None
    config = importlib.import_module(name).get_config(match["preset"])
    if match["size"]:
        config.image_size, config.batch_size = int(match["size"]), int(match["batch"])
    for override in filter(None, match["overrides"].split("@")):
        key, value = override.split("=", 1)
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = type(node[leaf])(_literal(value))
    if not data.get_spec(config.dataset).embedded:
        config.dataset = "digits"  # catalog data may be absent
    config.data_dir = data_dir
    config.compilation_cache_dir = ""  # only the subprocesses measure the cache
    return config


def _literal(value: str) -> Any:
    """A Python literal (`False`, `5`, `1e-4`), or the text itself (`hinge`)."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def case_name(spec: str, config: ml_collections.ConfigDict) -> str:
    """`spec` with the size and batch spelled out (`vae` -> `vae-32-b64`)."""
    match = _CASE.fullmatch(spec)
    family = match["family"] + (f":{match['preset']}" if match["preset"] else "")
    return f"{family}-{config.image_size}-b{config.batch_size}{match['overrides']}"


class JaxTrainer:
    """The task's state, compiled step and real input pipeline, built by the trainer's own
    pieces (`train.build_run`, `initial_state`, `train_iterator`, `jit_train_step`)."""

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        self.run_setup = train.build_run(config)
        self.spec = self.run_setup.spec
        self.iterator = self.new_iterator()
        self.marks = {"data_ready": time.time()}
        self.state = jax.block_until_ready(train.initial_state(self.run_setup))
        self.marks["state_ready"] = time.time()
        started = time.perf_counter()
        jitted = train.jit_train_step(self.run_setup)
        self.step_fn = jitted.lower(self.state, self.next_batch()).compile()
        self.compile_s = time.perf_counter() - started
        self.marks["compiled"] = time.time()

    def new_iterator(self) -> Iterator[dict[str, Any]]:
        """A fresh iterator over the training batches, as the trainer makes it."""
        return train.train_iterator(self.run_setup)

    def next_batch(self) -> Any:
        return self.run_setup.train_batch(next(self.iterator))

    def run(self, steps: int, batch: Any = None) -> None:
        """`steps` train steps on fresh batches (or on `batch`), blocking on the last result."""
        metrics = None
        for _ in range(steps):
            self.state, metrics = self.step_fn(
                self.state, self.next_batch() if batch is None else batch
            )
        jax.block_until_ready((self.state, metrics))


# ---------------------------------------------------------------------------------------------
# Timing.


def time_steps(run: Callable[[int], None], steps: int) -> float:
    started = time.perf_counter()
    run(steps)
    return time.perf_counter() - started


def window_steps(run: Callable[[int], None], settings: Settings) -> int:
    """Warms up, then picks whole steps per window so that a window lasts >= min_window_s."""
    run(settings.warmup_steps)
    return max(1, math.ceil(settings.min_window_s / time_steps(run, 1)))


def interleaved(
    runners: dict[str, Callable[[int], None]], batch_size: int, settings: Settings
) -> dict[str, dict[str, Any]]:
    """Median throughput of each runner over windows taken in turn (A B C A B C ...)."""
    steps = {name: window_steps(run, settings) for name, run in runners.items()}
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(settings.repeats):
        for name, run in runners.items():
            rates[name].append(steps[name] / time_steps(run, steps[name]))
    return {
        name: {
            "steps_per_s": statistics.median(rates[name]),
            "images_per_s": statistics.median(rates[name]) * batch_size,
            "window_steps": steps[name],
            "window_steps_per_s": rates[name],
        }
        for name in runners
    }


def torch_runner(
    config: ml_collections.ConfigDict, channels: int, channels_last: bool, iterator: Iterator
) -> Callable[[int], None]:
    """The PyTorch reference fed by the same pipeline (NHWC batches viewed as NCHW)."""
    import torch

    if config.model.name == "dcgan":
        torch_dcgan = _torch_references("torch_dcgan")
        model = torch_dcgan.build(**_torch_args(config, channels), channels_last=channels_last)
    elif config.model.name == "msrresnet":
        model = _torch_references("torch_restoration_references").MSRResNetIteration(
            channels, config.model.width, config.model.num_blocks, config.scale, channels_last
        )
    else:
        model = _torch_references().SNGANIteration(
            channels,
            config.model.latent_dim,
            config.model.g_width,
            config.model.d_width,
            config.n_critic,
            channels_last,
        )

    def run(steps: int) -> None:
        for _ in range(steps):
            images = torch.from_numpy(next(iterator)["image"])
            model.step(images.permute(*range(images.ndim - 3), -1, -3, -2))

    return run


def _torch_references(name: str = "torch_gan_references") -> Any:
    """tests/NAME.py: PyTorch twins of the reference implementations (kept out of the package,
    which never imports torch; a source checkout has them)."""
    path = ROOT / "tests" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torch_args(config: ml_collections.ConfigDict, channels: int) -> dict[str, int]:
    return {
        "image_size": config.image_size,
        "channels": channels,
        "latent_dim": config.model.latent_dim,
        "g_width": config.model.g_width,
        "d_width": config.model.d_width,
    }


def has_torch_reference(config: ml_collections.ConfigDict, settings: Settings) -> bool:
    """Whether a PyTorch twin of the case's step exists and can run: torch installed, and the
    references of tests/ present (a source checkout, not an installed package)."""
    if not (ROOT / "tests" / "torch_gan_references.py").exists():
        return False
    if config.task == "restoration":
        plain = not (config.perceptual_weight or config.adversarial_weight)
        reference = config.model.name == "msrresnet" and config.pixel_loss == "l1" and plain
        return settings.torch and reference and torch_version() is not None
    sngan = config.model.name == "sngan32" and config.model.spectral_norm
    reference = config.model.name == "dcgan" or (
        sngan and config.loss == "hinge" and not config.gp_weight and not config.r1_weight
    )
    return settings.torch and reference and torch_version() is not None


def torch_version() -> str | None:
    """torch's version if it is installed, without importing it into a JAX-only run."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------
# Input pipeline.


def pipeline_rate(
    iterator: Iterator, batch_size: int, seconds: float, prefetch: int, done=lambda: True
) -> float:
    """Images/s pulled from `iterator` over >= `seconds` (and until `done()`).

    The prefetch buffer is drained first so that the rate is the producers', not the buffer's.
    """
    for _ in range(prefetch + 1):
        next(iterator)
    batches, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or not done():
        next(iterator)
        batches += 1
    return batches * batch_size / (time.perf_counter() - started)


def measure_pipeline(trainer: JaxTrainer, steps: int, settings: Settings) -> dict[str, float]:
    """The pipeline alone, then while a thread runs `steps` train steps on a fixed batch."""
    batch_size, prefetch = trainer.config.batch_size, trainer.config.input_prefetch
    alone = pipeline_rate(trainer.new_iterator(), batch_size, settings.pipeline_s, prefetch)
    batch, finished, elapsed = trainer.next_batch(), threading.Event(), []

    def train_loop() -> None:
        try:
            elapsed.append(time_steps(lambda n: trainer.run(n, batch), steps))
        finally:
            finished.set()

    thread = threading.Thread(target=train_loop)
    thread.start()
    during = pipeline_rate(
        trainer.new_iterator(), batch_size, settings.pipeline_s, prefetch, finished.is_set
    )
    thread.join()
    return {
        "alone_images_per_s": alone,
        "during_training_images_per_s": during,
        "training_steps_per_s_during": steps / elapsed[0],
    }


# ---------------------------------------------------------------------------------------------
# Fresh processes: compile time, start-up time and peak memory.


def spawn(module: str, args: list[str]) -> dict[str, Any]:
    """Runs `python -m module args`; its last stdout line is JSON with unix-time `marks`.

    Marks are returned as seconds since just before the process was started. A shell forks the
    process: on Linux a process exec'd straight from this one would inherit this process's RSS
    high-water mark as its `ru_maxrss`.
    """
    command = ["sh", "-c", '"$@"; exit $?', "sh", sys.executable, "-m", module, *args]
    started = time.time()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"python -m {module} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    phases = {name: t - started for name, t in result.pop("marks").items()}
    return {
        "start_to_first_step_s": phases["first_step"],
        "phases_s": phases,
        "peak_rss_mib": result.pop("max_rss_kib") / _MIB,
        **result,
    }


def jax_probe(args: dict[str, Any]) -> dict[str, Any]:
    """Body of a fresh JAX process: build as the trainer does, compile (timed), run `steps`."""
    marks = {"imported": time.time()}
    config = case_config(args["case"], args["data_dir"])
    config.compilation_cache_dir = args["cache_dir"]  # build_run turns it on, as in training
    trainer = JaxTrainer(config)
    trainer.run(1)
    marks.update(trainer.marks, first_step=time.time())
    trainer.run(args["steps"] - 1)
    return {
        "marks": marks,
        "compile_s": trainer.compile_s,
        "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def fresh_processes(
    spec: str,
    config: ml_collections.ConfigDict,
    channels: int,
    settings: Settings,
    torch_layout: str | None,
) -> dict[str, dict[str, Any]]:
    """JAX with an empty compilation cache (one step), then reusing it; PyTorch in `torch_layout`
    (the faster one in this process, or None)."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="cnngen_bench_xla_") as cache_dir:
        args = {"case": spec, "data_dir": config.data_dir, "cache_dir": cache_dir}
        for name, steps in (("jax_cold_cache", 1), ("jax_warm_cache", settings.probe_steps)):
            probe = json.dumps({**args, "steps": steps})
            results[name] = spawn("cnngen_jax.benchmark", [f"--probe={probe}"])
    if torch_layout is not None and config.model.name == "dcgan":  # the DCGAN's probe only
        torch_args = {**_torch_args(config, channels), "batch_size": config.batch_size}
        torch_args.update(channels_last=TORCH_LAYOUTS[torch_layout], steps=settings.probe_steps)
        results[torch_layout] = spawn("tests.torch_dcgan", [json.dumps(torch_args)])
    return results


# ---------------------------------------------------------------------------------------------
# One case, the whole run, the report.


def run_case(spec: str, settings: Settings) -> dict[str, Any] | None:
    """Every figure of one case; None if its family has no config."""
    config = case_config(spec, settings.data_dir)
    if config is None:
        return None
    started = time.perf_counter()
    name = case_name(spec, config)
    trainer = JaxTrainer(config)
    channels = trainer.spec.channels
    runners = {"jax": trainer.run}
    if has_torch_reference(config, settings):
        runners |= {
            layout: torch_runner(config, channels, channels_last, trainer.iterator)
            for layout, channels_last in TORCH_LAYOUTS.items()
        }
    result: dict[str, Any] = {
        "case": name,
        "task": config.task,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "channels": channels,
        "dataset": config.dataset,
        "compile_in_process_s": trainer.compile_s,
        "train": interleaved(runners, config.batch_size, settings),
    }
    _progress(name, "train windows", started)
    window = result["train"]["jax"]["window_steps"]
    result["pipeline"] = measure_pipeline(trainer, window, settings)
    _progress(name, "input pipeline", started)
    result["torch_best_layout"] = _torch_best(result["train"])
    if settings.subprocesses:
        processes = fresh_processes(spec, config, channels, settings, result["torch_best_layout"])
        result["processes"] = processes
        _progress(name, "fresh processes", started)
    result["ratios"] = ratios(result)
    result["wall_s"] = time.perf_counter() - started
    return result


def _progress(case: str, what: str, started: float) -> None:
    print(f"{case}: {what} done at {time.perf_counter() - started:.0f} s", flush=True)


def _torch_best(train_figures: dict[str, dict[str, Any]]) -> str | None:
    layouts = [name for name in TORCH_LAYOUTS if name in train_figures]
    return max(layouts, key=lambda n: train_figures[n]["steps_per_s"]) if layouts else None


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """JAX over the fastest PyTorch layout: throughput (> 1: JAX faster); start-up time and
    peak memory (< 1: JAX better)."""
    best = result["torch_best_layout"]
    if best is None:
        return {}
    train_figures = result["train"]
    out = {"train": train_figures["jax"]["steps_per_s"] / train_figures[best]["steps_per_s"]}
    processes = result.get("processes", {})
    for figure in ("start_to_first_step_s", "peak_rss_mib") if best in processes else ():
        for jax_name in ("jax_cold_cache", "jax_warm_cache"):
            out[f"{figure}_{jax_name}"] = processes[jax_name][figure] / processes[best][figure]
    return out


def machine_info(with_torch: bool) -> dict[str, Any]:
    """What the figures depend on: CPU, cores, library versions, devices, date, load."""
    info = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "load_average_1_5_15_min": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "cpu_convolutions": "onednn" if onednn.available() else "xla",
        "torch": torch_version(),
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if with_torch and info["torch"] is not None:
        import torch

        info["torch_num_threads"] = torch.get_num_threads()  # left at its default: all cores
    return info


def _cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def benchmark(specs: list[str], settings: Settings, command: str = "") -> dict[str, Any]:
    """Runs every case; the report as written to JSON."""
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": command,
        "machine": machine_info(settings.torch),
        "settings": dataclasses.asdict(settings),
        "notes": NOTES,
        "cases": {},
        "skipped": [],
    }
    for spec in specs:
        result = run_case(spec, settings)
        if result is None:
            report["skipped"].append(spec)
        else:
            report["cases"][result["case"]] = result
    report["machine"]["load_average_at_end"] = os.getloadavg()
    report["wall_s"] = time.perf_counter() - started
    return report


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _rows(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A titled table: the first two columns left-aligned, figures right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in pairs]
        return "  ".join(cells).rstrip()

    return ["", title, line(header), *(line(row) for row in rows)]


def _train_rows(name: str, case: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for impl, fig in case["train"].items():
        windows = fig["window_steps_per_s"]
        spread = f"{min(windows):.3f}-{max(windows):.3f}"
        it_s, img_s = f"{fig['steps_per_s']:.3f}", f"{fig['images_per_s']:.1f}"
        rows.append((name if not rows else "", impl, it_s, img_s, spread, str(fig["window_steps"])))
    if case["ratios"]:
        rows.append(("", "JAX / PyTorch-best", f"{case['ratios']['train']:.2f}x", "", "", ""))
    return rows


def _process_rows(name: str, case: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for impl, fig in case.get("processes", {}).items():
        start, rss = _fmt(fig["start_to_first_step_s"]), _fmt(fig["peak_rss_mib"], ".0f")
        rows.append((name if not rows else "", impl, _fmt(fig.get("compile_s")), start, rss))
    with_torch = "start_to_first_step_s_jax_cold_cache" in case["ratios"]
    for jax_name in ("jax_cold_cache", "jax_warm_cache") if with_torch else ():
        start = _fmt(case["ratios"][f"start_to_first_step_s_{jax_name}"], ".2f", "x")
        rss = _fmt(case["ratios"][f"peak_rss_mib_{jax_name}"], ".2f", "x")
        rows.append(("", f"{jax_name} / PyTorch-best", "", start, rss))
    return rows


def _pipeline_row(name: str, case: dict[str, Any]) -> tuple[str, ...]:
    pipe, jax_train = case["pipeline"], case["train"]["jax"]
    return (
        name,
        "",
        f"{pipe['alone_images_per_s']:.0f}",
        f"{pipe['during_training_images_per_s']:.0f}",
        f"{jax_train['images_per_s']:.1f}",
        f"{jax_train['images_per_s'] / pipe['alone_images_per_s']:.1%}",
        f"{pipe['training_steps_per_s_during']:.3f}",
        f"{jax_train['steps_per_s']:.3f}",
    )


def _machine_line(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu_model']}, {machine['cores_available']} cores, jax {machine['jax']} "
        f"({machine['jax_backend']}, {len(machine['jax_devices'])} device(s), "
        f"{machine['cpu_convolutions']} CPU convolutions), torch "
        f"{machine['torch']} ({machine.get('torch_num_threads', '-')} threads, the default); "
        f"load average {machine['load_average_1_5_15_min'][0]:.1f} at start, "
        f"{machine['load_average_at_end'][0]:.1f} at end"
    )


def format_report(report: dict[str, Any]) -> str:
    """The readable tables printed at the end of a run."""
    cases = report["cases"].items()
    lines = [_machine_line(report["machine"])]
    lines += _rows(
        "Training (median over interleaved windows; JAX / PyTorch-best > 1: JAX faster)",
        ("case", "impl", "it/s", "img/s", "windows it/s", "steps/window"),
        [row for name, case in cases for row in _train_rows(name, case)],
    )
    process_rows = [row for name, case in cases for row in _process_rows(name, case)]
    if process_rows:
        lines += _rows(
            "Fresh processes (compile: the train step; start: process start to first step done; "
            "ratios < 1: JAX better)",
            ("case", "impl", "compile s", "start s", "peak RSS MiB"),
            process_rows,
        )
    lines += _rows(
        "Input pipeline (images/s pulled flat out, alone and while a JAX train loop runs on a "
        "fixed batch; what training needs, as a share of 'alone'; the loop's it/s then and "
        "fed by the pipeline)",
        ("case", "", "alone", "during training", "train needs", "share", "train it/s then")
        + ("it/s fed",),
        [_pipeline_row(name, case) for name, case in cases],
    )
    lines += ["", *(f"note: {note}" for note in report["notes"])]
    if report["skipped"]:
        lines.append(f"\nskipped (no config): {', '.join(report['skipped'])}")
    lines.append(f"\ntotal wall time {report['wall_s']:.0f} s")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m cnngen_jax.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Settings()
    parser.add_argument("--out", default="bench.json", help="JSON report path")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES), help="comma-separated cases")
    parser.add_argument(
        "--repeats", type=int, default=defaults.repeats, help="timed windows per implementation"
    )
    parser.add_argument(
        "--torch",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the PyTorch reference where torch is importable",
    )
    parser.add_argument("--data_dir", default="", help="as --config.data_dir")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # the JAX fresh-process probe
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.probe:
        print(json.dumps(jax_probe(json.loads(args.probe))))
        return
    settings = Settings(repeats=args.repeats, torch=args.torch, data_dir=args.data_dir)
    command = shlex.join([sys.executable, "-m", "cnngen_jax.benchmark", *sys.argv[1:]])
    try:
        report = benchmark([c for c in args.cases.split(",") if c], settings, command)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(format_report(report), flush=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
