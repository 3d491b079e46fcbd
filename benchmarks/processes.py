"""Fresh processes: the train step's compile time with an empty and a reused persistent
compilation cache, process start to first step, and the RSS high-water mark."""

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ml_collections

from benchmarks.cases import JaxTrainer, case_config, main_flags
from benchmarks.timing import Settings
from benchmarks.torch_reference import TORCH_LAYOUTS, torch_args

ROOT = Path(__file__).resolve().parent.parent  # the repository root: benchmarks/ and tests/
PROBE_MODULE = "benchmarks.train_speed"  # its hidden --probe=JSON runs `jax_probe`
_MIB = 1024  # ru_maxrss is in KiB on Linux


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
    trainer = JaxTrainer(config, fixed_batch=False)
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
            results[name] = spawn(PROBE_MODULE, [f"--probe={probe}"])
    if torch_layout is not None and config.model.name == "dcgan":  # the DCGAN's probe only
        probe_args = {**torch_args(config, channels), "batch_size": config.batch_size}
        probe_args.update(channels_last=TORCH_LAYOUTS[torch_layout], steps=settings.probe_steps)
        results[torch_layout] = spawn("tests.torch_dcgan", [json.dumps(probe_args)])
    return results


def main_rate(spec: str, config: ml_collections.ConfigDict, steps: int) -> dict[str, Any]:
    """The steps/s `python -m cnngen_jax.main` logs training case `spec` for `steps` steps in
    a fresh process: the median of its log intervals after the first (compile, warm-up)."""
    with tempfile.TemporaryDirectory(prefix="cnngen_bench_main_") as workdir:
        command = [sys.executable, "-m", "cnngen_jax.main", *main_flags(spec, config, steps)]
        done = subprocess.run(
            [*command, f"--workdir={workdir}"], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        lines = Path(workdir, "metrics.jsonl").read_text().splitlines()
    rates = [json.loads(line).get("steps_per_sec") for line in lines]
    steady = [rate for rate in rates if rate is not None][1:]
    return {"steps": steps, "logged_steps_per_s": steady, "steps_per_s": statistics.median(steady)}
