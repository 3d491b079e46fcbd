"""Errors a user can cause, reported as one clear message instead of a stack trace."""


class UserError(Exception):
    """A mistake in the settings or environment that the user can fix.

    The message names the setting and the fix; `main` prints it and exits non-zero.
    """


class NonFiniteLossError(Exception):
    """Training produced a NaN or Inf; the last good checkpoint is kept."""


class Preempted(Exception):
    """The run was asked to stop (SIGTERM) and saved a checkpoint of the step it reached."""

    def __init__(self, step: int, checkpoint_dir: str):
        super().__init__(
            f"preempted: stopped after step {step} with a checkpoint of it in {checkpoint_dir}; "
            "re-run the same command to resume"
        )
        self.step = step
