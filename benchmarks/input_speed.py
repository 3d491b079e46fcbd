"""Images/s of the host input path: the per-record pipeline against the vectorised one, beside
the default restoration step's own consumption.

    python -m benchmarks.input_speed [--out=input_speed.json] [--repeats=N] [--data_dir=DIR]

Inputs (each at its config's input_threads and input_prefetch, the prefetch buffer drained
before timing; the median of `repeats` measurements of `pipeline_s` each, taken in turn):

* `digits-64-b64` (the embedded digits resized to 64 px, batch 64): per record, each example
  decoded and resized by `Preprocess` in Grain's own shuffled batches of indices (the pipeline
  before the vectorised path), against `pipeline.train_iterator` given the split decoded at 64
  px (`decoded.decoded_split`: read from its cache as the trainer reads it);
* `photos-64-b8` (configs/srresnet.py's random crops of the embedded photographs): per record,
  every photograph decoded whole for each crop of it, against `pipeline.train_iterator`
  (photographs kept once decoded, the batch order from whole epochs).

The restoration step: configs/srresnet.py's train step, jitted as the trainer jits it, on one
fixed batch (images/s it consumes). Targets (issue 22): vectorised >= 3x per record on the same
data; the photographs' vectorised path >= 10x the restoration step's consumption.
"""

import argparse
import shlex
import statistics
import sys
from typing import Any

import grain
import jax
import ml_collections
import numpy as np

from benchmarks.cases import case_config
from benchmarks.report import machine_info, publish
from benchmarks.timing import Settings, interleaved, pipeline_rate
from cnngen_jax import data, train
from cnngen_jax.data import decoded, pipeline

MODULE = "benchmarks.input_speed"
PHOTOS = "srresnet"  # the default restoration config
INPUTS = ("dcgan-64-b64", PHOTOS)  # the digits at 64 px, batch 64; the photographs' crops


def per_record_iterator(config: ml_collections.ConfigDict, source: Any) -> Any:
    """The training batches as the pipeline read them before the vectorised path."""
    spec = data.get_spec(config.dataset)
    preprocess = pipeline.Preprocess(source, spec, config.image_size)
    batch_size, seed = config.batch_size, config.seed

    def read(position: int, indices: np.ndarray) -> dict[str, np.ndarray]:
        crops = None
        if spec.variable_size:
            crops = np.random.default_rng((seed, position)).random((batch_size, 2))
        return preprocess(indices, crops)

    shuffled = grain.MapDataset.range(len(source)).shuffle(seed=seed).repeat()
    batches = shuffled.batch(batch_size, drop_remainder=True).map_with_index(read)
    options = grain.ReadOptions(
        num_threads=config.input_threads, prefetch_buffer_size=config.input_prefetch
    )
    return iter(batches.to_iter_dataset(options))


def vectorised_iterator(config: ml_collections.ConfigDict, source: Any) -> Any:
    """`pipeline.train_iterator`, given fixed-size data's split decoded at the training size."""
    spec, data_dir = data.get_spec(config.dataset), data.resolve_data_dir(config.data_dir)
    split = None
    if not spec.variable_size:
        split = decoded.decoded_split(config.dataset, spec.train_split, data_dir, config.image_size)
    return pipeline.train_iterator(
        source, spec, image_size=config.image_size, global_batch_size=config.batch_size,
        rows=slice(0, config.batch_size), seed=config.seed, num_threads=config.input_threads,
        prefetch=config.input_prefetch, decoded=split,
    )  # fmt: skip


def input_rates(config: ml_collections.ConfigDict, settings: Settings) -> dict[str, Any]:
    """Images/s of both paths over the training split of `config.dataset`."""
    data_dir = data.resolve_data_dir(config.data_dir)
    data.ensure_prepared(config.dataset, data_dir)
    source = data.open_source(config.dataset, data.get_spec(config.dataset).train_split, data_dir)
    paths = {"per_record": per_record_iterator, "vectorised": vectorised_iterator}
    iterators = {name: make(config, source) for name, make in paths.items()}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(settings.repeats):
        for name, iterator in iterators.items():
            prefetch = config.input_prefetch
            rates[name].append(
                pipeline_rate(iterator, config.batch_size, settings.pipeline_s, prefetch)
            )
    medians = {name: statistics.median(runs) for name, runs in rates.items()}
    return {
        "per_record_images_per_s": medians["per_record"],
        "vectorised_images_per_s": medians["vectorised"],
        "speedup": medians["vectorised"] / medians["per_record"],
        "runs_images_per_s": rates,
    }


def step_rate(config: ml_collections.ConfigDict, settings: Settings) -> dict[str, Any]:
    """The train step of `config` on one fixed batch, jitted as the trainer jits it."""
    run = train.build_run(config)
    state = train.initial_state(run)
    step = train.jit_train_step(run)
    batch = run.train_batch(next(vectorised_iterator(config, run.train_source)))

    def steps(count: int) -> None:
        nonlocal state
        for _ in range(count):
            state, metrics = step(state, batch)
        jax.block_until_ready((state, metrics))

    return interleaved({"step": steps}, config.batch_size, settings)["step"]


def benchmark(settings: Settings, command: str = "") -> dict[str, Any]:
    """Every figure; the report as written to JSON."""
    report: dict[str, Any] = {
        "command": command,
        "machine": machine_info(with_torch=False),
        "settings": {"repeats": settings.repeats, "pipeline_s": settings.pipeline_s},
        "inputs": {},
    }
    for spec in INPUTS:
        config = case_config(spec, settings.data_dir)
        name = f"{config.dataset}-{config.image_size}-b{config.batch_size}"
        report["inputs"][name] = input_rates(config, settings)
    restoration = case_config(PHOTOS, settings.data_dir)
    report["restoration_step"] = step_rate(restoration, settings)
    photos = report["inputs"][f"photos-{restoration.image_size}-b{restoration.batch_size}"]
    consumed = report["restoration_step"]["images_per_s"]
    report["photos_vectorised_over_step"] = photos["vectorised_images_per_s"] / consumed
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'input (images/s)':<22}{'per record':>12}{'vectorised':>12}{'speedup':>9}"]
    for name, figures in report["inputs"].items():
        lines.append(
            f"{name:<22}{figures['per_record_images_per_s']:>12,.0f}"
            f"{figures['vectorised_images_per_s']:>12,.0f}{figures['speedup']:>8.1f}x"
        )
    step, fed = report["restoration_step"]["images_per_s"], report["photos_vectorised_over_step"]
    lines.append(
        f"restoration step ({PHOTOS}, one fixed batch): {step:,.1f} images/s; the photographs' "
        f"vectorised path reads {fed:,.0f}x that"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="input_speed.json", help="JSON report path")
    parser.add_argument("--repeats", type=int, default=5, help="measurements per path")
    parser.add_argument("--data_dir", default="", help="as --config.data_dir")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.repeats < 1:
        parser.error(f"--repeats={args.repeats}: at least one measurement is needed")
    settings = Settings(repeats=args.repeats, data_dir=args.data_dir)
    command = shlex.join([sys.executable, "-m", MODULE, *sys.argv[1:]])
    report = benchmark(settings, command)
    publish(format_report(report), report, args.out)


if __name__ == "__main__":
    main()
