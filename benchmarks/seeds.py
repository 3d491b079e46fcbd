"""Seed ablations in one step: the throughput of `config.num_seeds = K` against K separate runs.

    python -m benchmarks.seeds [--cases=dcgan-32-b64,vae-32-b64] [--num_seeds=1,4,8]
                                [--repeats=N] [--data_dir=DIR] [--out=bench_seeds.json]

Cases are named as in `benchmarks.train_speed`. Per case, one trainer per K is built from the
trainer's own pieces (as `benchmarks.cases.JaxTrainer` builds them, fed by the real input
pipeline) and their timed windows taken in turn (K=1, K=4, K=8, K=1, ...), so machine noise hits
all alike.
K separate runs, one after another on the same machine, train K seeds at the K=1 rate: a run of
K seeds is worth its replica-images/s (steps/s x batch x K) over K=1's.
"""

import argparse
import os
import shlex
import sys
from typing import Any

from benchmarks.cases import JaxTrainer, case_config, case_name
from benchmarks.report import machine_info, publish
from benchmarks.timing import Settings, interleaved
from cnngen_jax import cli
from cnngen_jax.errors import UserError

MODULE = "benchmarks.seeds"
DEFAULT_CASES = ("dcgan-32-b64", "vae-32-b64")
DEFAULT_SEEDS = (1, 4, 8)


def seed_scaling(spec: str, counts: list[int], settings: Settings) -> dict[str, Any]:
    """Steps/s, replica-images/s and the speed-up over separate runs, for each K in `counts`
    (the first is the baseline: K = 1, as `seed_counts` orders them)."""
    trainers = {}
    for count in counts:
        config = case_config(spec, settings.data_dir)
        if config is None:
            raise UserError(f"case {spec!r} (--cases) has no config file")
        config.num_seeds = count
        trainers[count] = JaxTrainer(config, fixed_batch=False)
    runners = {f"num_seeds={count}": trainer.run for count, trainer in trainers.items()}
    figures = interleaved(runners, 1, settings)
    batch = trainers[counts[0]].config.batch_size
    separate = figures[f"num_seeds={counts[0]}"]["steps_per_s"] * batch * counts[0]
    rows = {}
    for count, trainer in trainers.items():
        steps_per_s = figures[f"num_seeds={count}"]["steps_per_s"]
        rate = steps_per_s * batch * count
        rows[count] = {
            "steps_per_s": steps_per_s,
            "replica_images_per_s": rate,
            "vs_separate_runs": rate / separate,
            "compile_s": trainer.compile_s,
            "window_steps_per_s": figures[f"num_seeds={count}"]["window_steps_per_s"],
        }
    return {"case": case_name(spec, trainers[counts[0]].config), "by_num_seeds": rows}


def format_rows(results: list[dict[str, Any]]) -> str:
    lines = ["case | num_seeds | it/s | replica-img/s | vs separate runs | compile s"]
    for result in results:
        for count, row in result["by_num_seeds"].items():
            lines.append(
                f"{result['case']} | {count} | {row['steps_per_s']:.2f} | "
                f"{row['replica_images_per_s']:.0f} | {row['vs_separate_runs']:.2f}x | "
                f"{row['compile_s']:.1f}"
            )
    return "\n".join(lines)


def seed_counts(flag: str) -> list[int]:
    """The K of `--num_seeds=1,4,8`, with K = 1 (the separate runs' rate) first, or a
    UserError."""
    given = [count for count in flag.split(",") if count]
    counts = sorted(set(cli.numbers(given, "--num_seeds", int, "whole numbers, e.g. 1,4,8")))
    if not counts or counts[0] < 1:
        raise UserError(f"--num_seeds={flag} must be numbers of at least 1, e.g. 1,4,8")
    return counts if counts[0] == 1 else [1, *counts]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES))
    parser.add_argument("--num_seeds", default=",".join(map(str, DEFAULT_SEEDS)))
    parser.add_argument("--repeats", type=int, default=Settings().repeats)
    parser.add_argument("--data_dir", default="")
    parser.add_argument("--out", default="bench_seeds.json")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    settings = Settings(repeats=args.repeats, data_dir=args.data_dir)
    load_before = os.getloadavg()
    with cli.reported_errors():
        counts = seed_counts(args.num_seeds)
        results = [seed_scaling(spec, counts, settings) for spec in args.cases.split(",") if spec]
    report = {
        "command": shlex.join([sys.executable, "-m", MODULE, *sys.argv[1:]]),
        "machine": machine_info(with_torch=False),
        "load_average": [load_before, os.getloadavg()],
        "cases": results,
    }
    publish(format_rows(results), report, args.out)


if __name__ == "__main__":
    main()
