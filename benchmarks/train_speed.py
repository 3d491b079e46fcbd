"""Training speed of the project's own step, against a PyTorch reference where one exists.

    python -m benchmarks.train_speed [--out=bench.json] [--cases=dcgan-32-b128,vae]
                                     [--repeats=N] [--torch/--no-torch] [--data_dir=DIR]
                                     [--main_s=SECONDS]

A case is `FAMILY[:PRESET][-SIZE-bBATCH][@KEY=VALUE...]`: the family's `configs/FAMILY.py` (at
its preset, image size and global batch, with config overrides), fed its embedded dataset (the
digits in place of catalog data, which may be absent), e.g. `dcgan-32-b128`, `vae`,
`sngan:cifar10-32-b64` (the published SNGAN widths, n_critic 5),
`sngan:cifar10-32-b64@model.spectral_norm=False` or `srresnet-64-b8` (MSRResNet x4 on crops of
the embedded photographs). Per case it measures:

* steady-state train iterations/s and images/s: the trainer's own compiled dispatch
  (`train.jit_dispatch`: mesh shardings, donated state, `config.steps_per_dispatch` steps a
  call) fed by its own feed at the config's data placement (`train.make_feed`: device-resident
  data or the Grain pipeline), and the same step alone on one fixed batch; their ratio is the
  feed efficiency (1: the input path costs nothing). After warm-up, the median of timed
  windows, each window whole steps blocking on the result. With --main_s, also the steady
  steps/s `python -m cnngen_jax.main` logs for the case in a fresh process, against the same
  fixed-batch rate. For the DCGAN (tests/torch_dcgan.py) and SNGAN-32
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
import dataclasses
import json
import math
import os
import shlex
import sys
import time
from typing import Any

from benchmarks.cases import JaxTrainer, case_config, case_name
from benchmarks.processes import fresh_processes, jax_probe, main_rate
from benchmarks.report import format_report, machine_info, publish
from benchmarks.timing import Settings, interleaved, measure_pipeline
from benchmarks.torch_reference import TORCH_LAYOUTS, has_torch_reference, torch_runner
from cnngen_jax.errors import UserError

MODULE = "benchmarks.train_speed"
DEFAULT_CASES = ("dcgan-32-b64", "dcgan-32-b128", "dcgan-64-b64", "dcgan-64-b128", "vae")
NOTES = (
    "PyTorch keeps its default thread count (torch.set_num_threads untouched: all cores); JAX "
    "uses XLA's default CPU thread pool.",
    "The PyTorch reference's G step also computes D's (unused) weight gradients, as "
    "pytorch/examples does; the JAX step does not.",
    "Fresh processes: JAX runs the trainer's path on the real pipeline; PyTorch runs the faster "
    "layout on a random batch. They are forked through sh so that ru_maxrss is their own.",
)


def run_case(spec: str, settings: Settings) -> dict[str, Any] | None:
    """Every figure of one case; None if its family has no config."""
    config = case_config(spec, settings.data_dir)
    if config is None:
        return None
    started = time.perf_counter()
    name = case_name(spec, config)
    trainer = JaxTrainer(config)
    channels = trainer.spec.channels
    runners = {"jax": trainer.run, "jax_fixed_batch": trainer.run_fixed}
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
        "train": interleaved(runners, config.batch_size, settings, {"jax": trainer.steps_per_call}),
    }
    _progress(name, "train windows", started)
    result["feed"] = feed_figures(spec, config, trainer, result["train"], settings)
    _progress(name, "feed", started)
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


def feed_figures(
    spec: str,
    config: Any,
    trainer: JaxTrainer,
    train_figures: dict[str, dict[str, Any]],
    settings: Settings,
) -> dict[str, Any]:
    """Where the step's time goes: it/s fed as the trainer feeds it over it/s on one fixed batch
    (the feed efficiency), in this process and, with `settings.main_s`, as the steps/s
    `python -m cnngen_jax.main` logs in a fresh one."""
    fixed = train_figures["jax_fixed_batch"]["steps_per_s"]
    figures: dict[str, Any] = {
        "placement": trainer.placement,
        "steps_per_dispatch": trainer.steps_per_call,
        "efficiency": train_figures["jax"]["steps_per_s"] / fixed,
    }
    if settings.main_s > 0:
        unit = 5 * trainer.steps_per_call  # five log intervals of whole dispatches
        steps = unit * max(2, math.ceil(fixed * settings.main_s / unit))
        figures["main"] = main_rate(spec, config, steps)
        figures["main_efficiency"] = figures["main"]["steps_per_s"] / fixed
    return figures


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


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
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
    parser.add_argument(
        "--main_s",
        type=float,
        default=defaults.main_s,
        help="also run python -m cnngen_jax.main on each case for about this many seconds and "
        "report the rate it logs against the fixed-batch step (0: not)",
    )
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # the JAX fresh-process probe
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats}: at least one timed window is needed")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.probe:
        print(json.dumps(jax_probe(json.loads(args.probe))))
        return
    settings = Settings(
        repeats=args.repeats, torch=args.torch, data_dir=args.data_dir, main_s=args.main_s
    )
    command = shlex.join([sys.executable, "-m", MODULE, *sys.argv[1:]])
    try:
        report = benchmark([c for c in args.cases.split(",") if c], settings, command)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    publish(format_report(report), report, args.out)


if __name__ == "__main__":
    main()
