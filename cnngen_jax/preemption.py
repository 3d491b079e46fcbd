"""Preemption: TPU VMs and cloud schedulers announce it with SIGTERM, some seconds ahead.

`PreemptionWatch.reached(step)` turns the notice into a step at which the run saves a
checkpoint and stops (`errors.Preempted`, exit code 4 from the command line); re-running the
same command resumes exactly from it. With several processes, JAX's preemption service (started
by `jax.distributed.initialize`) receives the signal on any host and picks the step every
process stops at, so all of them save the same one. One process catches SIGTERM itself.
"""

import signal
import threading
from types import FrameType

import jax
from jax.experimental import multihost_utils


class PreemptionWatch:
    """From construction to `close`, SIGTERM asks the training loop to save and stop."""

    def __init__(self):
        self._notified = False
        self._previous = None
        # A multi-process run leaves the signal to JAX's preemption service; a Python handler
        # can only be set from the main thread (a notebook's kernel runs cells there).
        own = not jax.distributed.is_initialized()
        if own and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._notify)

    def close(self) -> None:
        """Gives SIGTERM back to the handler it had before."""
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _notify(self, signum: int, frame: FrameType | None) -> None:
        self._notified = True

    def reached(self, step: int) -> bool:
        """Whether the run stops after `step`; every process calls it after every dispatch
        with consecutive numbers (JAX's service stops at the first number past the highest
        any process had reached)."""
        if jax.distributed.is_initialized():
            return multihost_utils.reached_preemption_sync_point(step)
        return self._notified
