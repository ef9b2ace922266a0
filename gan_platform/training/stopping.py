"""Ctrl-C, SIGTERM and a cluster's preemption signal during training: a request to stop cleanly
after the current iteration.

The first signal only sets a flag; the trainer asks `should_stop(step, log_step)` after every
iteration. One process stops at once: the flag is a plain Python bool, read on the CPU, so the
check adds no host-device sync. Several processes must stop at the same iteration, so they agree
with one all-reduce of the flag, at each log step and, between log steps, about once a second:
each agreement also reduces the time the iterations since the last one took and sets the next
agreement that many iterations ahead (the same number on every process, so the collectives always
match). The run then saves a checkpoint of that iteration and ends. A second Ctrl-C more than a
second after the first raises KeyboardInterrupt (stop now, keep the last checkpoint); one within
that second is an echo of the first and is ignored.

Inside a sweep trial (`wandb agent`, or the local runner of `gan_platform.sweep`) SIGTERM is the
sweep's own stop: W&B's agent sends it to a run the server stops (hyperband early termination) and
the local runner does the same. Such a trial ends with status `stopped_by_sweep` and exit code 0,
so that the agent does not count a stop it asked for as a failed run. Ctrl-C (SIGINT) stays an
interruption everywhere (`interrupted`, exit 130), and so does SIGTERM outside a sweep.

SIGUSR1 and SIGUSR2 are a cluster's warning before it stops the job (SLURM's `--signal=USR1@180`,
submitit's `USR2`): the run stops the same way with status `preempted`, and once its checkpoint and
summary are written the job is requeued (preemption.py), with the handler that was installed for
the signal before training (submitit's) when there is one (`previous`). When processes disagree,
an interruption wins over a sweep's stop, which wins over a preemption.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any, Optional

import torch
from accelerate import Accelerator

from gan_platform.runs.status import Status

log = logging.getLogger("gan_platform.training.trainer")  # the training loop's messages keep one logger name

PREEMPT_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)  # SLURM's --signal=USR1@..., submitit's USR2
SIGNALS = (signal.SIGINT, signal.SIGTERM, *PREEMPT_SIGNALS)
# Why a run stopped, as summary.json's status; in order of precedence when processes disagree.
STOPS = (Status.INTERRUPTED, Status.STOPPED_BY_SWEEP, Status.PREEMPTED)
LOCAL_SWEEP_ENV = "GAN_SWEEP_TRIAL"  # set by gan_platform.sweep's runner in each trial's environment


def in_wandb_sweep() -> bool:
    """True inside a trial that `wandb agent` started (it sets both variables)."""
    return bool(os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"))


def in_sweep_trial() -> bool:
    """True in a trial that a W&B agent or the local sweep runner started."""
    return bool(os.environ.get(LOCAL_SWEEP_ENV)) or in_wandb_sweep()


def stop_status(signum: int) -> str:
    """The status a run stopped by `signum` ends with: SIGTERM in a sweep trial is the sweep's stop,
    SIGUSR1/SIGUSR2 the cluster's preemption."""
    if signum in PREEMPT_SIGNALS:
        return Status.PREEMPTED
    return Status.STOPPED_BY_SWEEP if signum == signal.SIGTERM and in_sweep_trial() else Status.INTERRUPTED




class StopRequest:
    """Installs the SIGINT/SIGTERM handlers for a run and says when all processes want to stop."""

    def __init__(self, accelerator: Accelerator, agree_every_s: float = 1.0):
        self.acc = accelerator
        self.requested = False
        self.status = Status.INTERRUPTED  # what the first signal asked for (stop_status)
        self.signum: Optional[int] = None  # the first signal this process received
        self.time = 0.0
        self._old_handlers: dict[int, Any] = {}
        self.previous: dict[int, Any] = {}  # the preemption signals' handlers before training (submitit's)
        self.agree_every_s = agree_every_s  # several processes: seconds between agreements
        self.start(0)

    def start(self, step: int) -> None:
        """Training starts (or resumes) at `step`: the first agreement comes after one iteration."""
        self.next_agreement, self._since_step, self._since = step + 1, step, time.monotonic()

    def install(self) -> None:
        """Route SIGINT/SIGTERM to `on_signal` (only possible from the main thread)."""
        for sig in SIGNALS:
            try:
                self._old_handlers[sig] = signal.signal(sig, self.on_signal)
            except ValueError:  # not the main thread
                pass
        self.previous = {sig: h for sig, h in self._old_handlers.items() if sig in PREEMPT_SIGNALS}

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
        self.requested, self.time, self.status, self.signum = True, time.monotonic(), stop_status(signum), signum
        if self.acc.is_main_process and self.status == Status.STOPPED_BY_SWEEP:
            log.warning("Stopped by the sweep: stopping after this iteration and saving a checkpoint.")
        elif self.acc.is_main_process and self.status == Status.PREEMPTED:
            log.warning("Preempted (%s): stopping after this iteration, saving a checkpoint and requeueing the job.",
                        signal.Signals(signum).name)
        elif self.acc.is_main_process:
            log.warning("Stop requested: stopping after this iteration and saving a checkpoint (press Ctrl-C again to quit now).")

    def should_stop(self, step: int, log_step: bool) -> bool:
        """Called after every iteration (`step` reached): stop now? One process: the flag. Several: the
        agreement of all, at log steps and about every `agree_every_s` seconds (a collective then,
        reached by every process at the same step)."""
        if self.acc.num_processes == 1:
            return self.requested
        if not (log_step or step >= self.next_agreement):
            return False
        return self.agreed(step)

    def agreed(self, step: Optional[int] = None) -> bool:
        """Has any process been asked to stop? With several processes a collective: one all-reduce (max)
        of the stop code and of the seconds since the last agreement, which sets the next one (at `step`)."""
        # 0: no stop; else len(STOPS) - the index of its status (the largest wins: Ctrl-C on any
        # process makes it an interruption), the same on every process.
        code = len(STOPS) - STOPS.index(self.status) if self.requested else 0
        if self.acc.num_processes == 1:
            return code > 0
        now = time.monotonic()
        t = torch.tensor([float(code), now - self._since], device=self.acc.device)
        code_f, seconds = self.acc.reduce(t, reduction="max").tolist()
        code = int(code_f)
        if code:
            self.status = STOPS[len(STOPS) - code]
        if step is not None:
            per_iteration = seconds / max(step - self._since_step, 1)
            self.next_agreement = step + max(1, int(self.agree_every_s / max(per_iteration, 1e-9)))
            self._since_step, self._since = step, now
        return code > 0
