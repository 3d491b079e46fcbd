"""Errors a user can cause, reported as one clear message instead of a stack trace."""


class UserError(Exception):
    """A mistake in the settings or environment that the user can fix.

    The message names the setting and the fix; `main` prints it and exits non-zero.
    """


class NonFiniteLossError(Exception):
    """Training produced a NaN or Inf; the last good checkpoint is kept."""
