"""Ctrl-C and SIGTERM during training: a request to stop cleanly at the next log step.

The first signal only sets a flag; the trainer asks `agreed()` at each log step, which reduces the
flag over all processes so that every rank stops at the same step, saves and ends the run. A second
Ctrl-C more than a second after the first raises KeyboardInterrupt (stop now, keep the last
checkpoint); one within that second is an echo of the first and is ignored.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import torch
from accelerate import Accelerator

log = logging.getLogger("gan_platform.trainer")  # the training loop's messages keep one logger name

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Installs the SIGINT/SIGTERM handlers for a run and says when all processes want to stop."""

    def __init__(self, accelerator: Accelerator):
        self.acc = accelerator
        self.requested = False
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
        self.requested, self.time = True, time.monotonic()
        if self.acc.is_main_process:
            log.warning("Stop requested: stopping at the next log step and saving a checkpoint (press Ctrl-C again to quit now).")

    def agreed(self) -> bool:
        """Has any process been asked to stop? A collective when there are several processes."""
        flag = self.requested
        if self.acc.num_processes > 1:
            t = torch.tensor([1.0 if flag else 0.0], device=self.acc.device)
            flag = bool(self.acc.reduce(t, reduction="sum").item() > 0)
        return flag
