"""Errors a user can cause, reported as one sentence and a non-zero exit.

`instantiate` lives here too: it is Hydra's, except that a UserError raised inside a `_target_`
comes out as itself, so every layer that builds from a config node (tasks, runs, data) reports the
user's mistake as one sentence without importing the config package above it."""

from __future__ import annotations

import sys
from typing import Any, Optional

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in config, input files or command line that the user can fix.

    The message is one sentence naming the problem and the fix; it is printed without a traceback.
    """


class ConfigError(UserError):
    """A config value that is missing, misspelt, of the wrong type or out of range."""


class DivergedError(RuntimeError):
    """Training produced a NaN or inf; the run stops and keeps its last good checkpoint."""

    def __init__(self, step: int, what: str, checkpoint_step: Optional[int] = None):
        self.step = step
        self.what = what
        self.checkpoint_step = checkpoint_step
        if checkpoint_step is None:
            kept = "no checkpoint had been written yet: lower the learning rate (or add a gradient penalty) and start again"
        else:
            kept = (f"checkpoints/last (step {checkpoint_step}) is kept: lower the learning rate (or add a gradient penalty) "
                    "and continue with trainer.resume=auto")
        super().__init__(f"Training diverged at step {step}: {what} is not finite; {kept}.")


def report_and_exit(error: BaseException, code: int = EXIT_USER_ERROR) -> None:
    """Print `error` as one line on stderr and exit with `code`."""
    print(f"gan_platform: error: {error}", file=sys.stderr, flush=True)
    sys.exit(code)


def instantiate(node: Any, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate`, but a UserError raised inside the target comes out as itself
    (Hydra wraps it in an InstantiationException with a traceback-like message)."""
    try:
        from hydra.utils import instantiate as hydra_instantiate

        return hydra_instantiate(node, **kwargs)
    except Exception as e:  # noqa: BLE001
        cause = e
        while cause is not None:
            if isinstance(cause, UserError):
                raise cause from None
            cause = cause.__cause__ or cause.__context__
        raise
