"""Ctrl-C and SIGTERM during training: a request to stop cleanly at the next log step.

The first signal only sets a flag; the trainer asks `agreed()` at each log step, which reduces the
flag over all processes so that every rank stops at the same step, saves and ends the run. A second
Ctrl-C more than a second after the first raises KeyboardInterrupt (stop now, keep the last
checkpoint); one within that second is an echo of the first and is ignored.

Inside a sweep trial (`wandb agent`, or the local runner of `gan_platform.sweep`) SIGTERM is the
sweep's own stop: W&B's agent sends it to a run the server stops (hyperband early termination) and
the local runner does the same. Such a trial ends with status `stopped_by_sweep` and exit code 0,
so that the agent does not count a stop it asked for as a failed run. Ctrl-C (SIGINT) stays an
interruption everywhere (`interrupted`, exit 130), and so does SIGTERM outside a sweep.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import torch
from accelerate import Accelerator

log = logging.getLogger("gan_platform.training.trainer")  # the training loop's messages keep one logger name

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Why a run stopped, as summary.json's status; in order of precedence when processes disagree.
STOPS = ("interrupted", "stopped_by_sweep")
LOCAL_SWEEP_ENV = "GAN_SWEEP_TRIAL"  # set by gan_platform.sweep's runner in each trial's environment


def in_wandb_sweep() -> bool:
    """True inside a trial that `wandb agent` started (it sets both variables)."""
    return bool(os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"))


def in_sweep_trial() -> bool:
    """True in a trial that a W&B agent or the local sweep runner started."""
    return bool(os.environ.get(LOCAL_SWEEP_ENV)) or in_wandb_sweep()


def stop_status(signum: int) -> str:
    """The status a run stopped by `signum` ends with: SIGTERM in a sweep trial is the sweep's stop."""
    return "stopped_by_sweep" if signum == signal.SIGTERM and in_sweep_trial() else "interrupted"


STOP_REASONS = {"interrupted": "stopped by a signal (Ctrl-C or SIGTERM); resume with trainer.resume=auto",
                "stopped_by_sweep": "stopped by the sweep (SIGTERM from the sweep agent: early termination "
                                    "such as hyperband, or the agent shutting down)"}


class StopRequest:
    """Installs the SIGINT/SIGTERM handlers for a run and says when all processes want to stop."""

    def __init__(self, accelerator: Accelerator):
        self.acc = accelerator
        self.requested = False
        self.status = "interrupted"  # what the first signal asked for (stop_status)
        self.time = 0.0
        self._old_handlers: dict[int, Any] = {}

    def install(self) -> None:
        """Route SIGINT/SIGTERM to `on_signal` (only possible from the main thread)."""
        for sig in SIGNALS:
            try:
                self._old_handlers[sig] = signal.signal(sig, self.on_signal)
            except ValueError:  # not the main thread
                pass

    def restore(self) -> None:
        """Put back the handlers `install` replaced."""
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers = {}

    def on_signal(self, signum: int, frame: Any) -> None:
        """The signal handler."""
        # A second Ctrl-C stops now, keeping the last checkpoint. A signal within a second of the first
        # is the same request: SLURM's scancel (or a kill of the process group) reaches every rank and
        # `accelerate launch` forwards it once more, and that echo must not cut the clean stop short.
        if self.requested and time.monotonic() - self.time > 1.0:
            raise KeyboardInterrupt
        if self.requested:
            return
        self.requested, self.time, self.status = True, time.monotonic(), stop_status(signum)
        if self.acc.is_main_process and self.status == "stopped_by_sweep":
            log.warning("Stopped by the sweep: stopping at the next log step and saving a checkpoint.")
        elif self.acc.is_main_process:
            log.warning("Stop requested: stopping at the next log step and saving a checkpoint (press Ctrl-C again to quit now).")

    def agreed(self) -> bool:
        """Has any process been asked to stop? A collective when there are several processes."""
        # 0: no stop; else len(STOPS) - the index of its status (the largest wins: Ctrl-C on any
        # process makes it an interruption), the same on every process.
        code = len(STOPS) - STOPS.index(self.status) if self.requested else 0
        if self.acc.num_processes > 1:
            t = torch.tensor([float(code)], device=self.acc.device)
            code = int(self.acc.reduce(t, reduction="max").item())
            if code:
                self.status = STOPS[len(STOPS) - code]
        return code > 0
