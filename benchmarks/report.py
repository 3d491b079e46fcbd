"""The report's machine description and the readable tables printed at the end of a run."""

import datetime
import json
import os
import platform
from typing import Any

import flax
import jax
import jaxlib

from benchmarks.torch_reference import torch_version
from cnngen_jax.kernels import onednn


def publish(text: str, report: dict[str, Any], path: str) -> None:
    """Prints the readable `text` and writes `report` as JSON to `path`."""
    print(text, flush=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {path}", flush=True)


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


def _feed_row(name: str, case: dict[str, Any]) -> tuple[str, ...]:
    feed, train = case["feed"], case["train"]
    main = feed.get("main")
    return (
        name,
        feed["placement"],
        str(feed["steps_per_dispatch"]),
        f"{train['jax_fixed_batch']['steps_per_s']:.2f}",
        f"{train['jax']['steps_per_s']:.2f}",
        f"{feed['efficiency']:.3f}",
        _fmt(main and main["steps_per_s"]),
        _fmt(feed.get("main_efficiency"), ".3f"),
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
    lines += _rows(
        "Feed efficiency (it/s fed by the trainer's feed at the run's placement, and logged by "
        "python -m cnngen_jax.main with --main_s, over it/s of the step on one fixed batch)",
        ("case", "placement", "k", "fixed it/s", "fed it/s", "fed/fixed", "main it/s")
        + ("main/fixed",),
        [_feed_row(name, case) for name, case in cases],
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
