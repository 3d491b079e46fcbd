"""How long to measure, and the measurements in this process: interleaved timed windows of
train steps, and the input pipeline's rate alone and beside a train loop."""

import dataclasses
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.cases import JaxTrainer


@dataclasses.dataclass(frozen=True)
class Settings:
    """How long to measure; the defaults keep the full default run under ~10 minutes."""

    repeats: int = 5  # timed windows per implementation
    min_window_s: float = 1.0  # a window runs whole steps for at least this long
    warmup_steps: int = 1  # untimed steps before calibrating the window
    probe_steps: int = 2  # steps run by each start-up / memory subprocess
    pipeline_s: float = 2.0  # minimum length of each input-pipeline measurement
    main_s: float = 0.0  # >0: also time `python -m cnngen_jax.main` for about this long
    torch: bool = True  # also run the PyTorch reference where the family has one
    subprocesses: bool = True  # the compile / start-up / memory measurements
    data_dir: str = ""  # as config.data_dir: '' is TFDS's default directory


def time_steps(run: Callable[[int], None], steps: int) -> float:
    started = time.perf_counter()
    run(steps)
    return time.perf_counter() - started


def window_steps(run: Callable[[int], None], settings: Settings, multiple: int = 1) -> int:
    """Warms up, then picks whole steps per window (a multiple of `multiple`: the steps of one
    call) so that a window lasts >= min_window_s."""
    run(max(settings.warmup_steps, multiple))
    calls = math.ceil(settings.min_window_s / time_steps(run, multiple))
    return multiple * max(1, calls)


def interleaved(
    runners: dict[str, Callable[[int], None]],
    batch_size: int,
    settings: Settings,
    multiples: dict[str, int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Median throughput of each runner over windows taken in turn (A B C A B C ...); a runner
    in `multiples` runs whole calls of that many steps."""
    multiples = multiples or {}
    steps = {
        name: window_steps(run, settings, multiples.get(name, 1)) for name, run in runners.items()
    }
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
    finished, elapsed = threading.Event(), []

    def train_loop() -> None:
        try:
            elapsed.append(time_steps(trainer.run_fixed, steps))
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
