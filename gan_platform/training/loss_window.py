"""The losses logged between two log steps, kept on the device until the window is flushed.

Each d_step/g_step returns a dict of 0-d loss tensors; `add` sums them per key on the device (no
per-step host sync). `flush` averages each key over the steps that logged it and over all
processes, adds `perf/it_per_s`, and brings everything to the host with one sync. A NaN/inf among
the averages raises DivergedError. A checkpoint holds the pending window (`state`, averaged over the
processes), so that a run stopped or killed between two log steps logs the same averages on resume.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch
from accelerate import Accelerator

from gan_platform.errors import DivergedError


class LossWindow:
    """Per-key loss sums and counts since the last flush, and the iterations they span."""

    def __init__(self, accelerator: Accelerator):
        self.acc = accelerator
        self.sums: dict[str, torch.Tensor] = {}  # the pending losses, not yet logged
        self.counts: dict[str, int] = {}  # how many steps logged each key in this window
        self.iterations = 0
        self.start = time.perf_counter()

    def add(self, logs: dict[str, torch.Tensor]) -> None:
        """One step's losses, summed on the device."""
        for k, v in logs.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def state(self) -> dict:
        """The pending window for a checkpoint; with several processes a collective (the sums are
        averaged over them, which leaves the mean that `flush` will take unchanged)."""
        keys = sorted(self.sums)
        sums = {k: self.sums[k].detach() for k in keys}
        if keys and self.acc.num_processes > 1:
            mean = self.acc.reduce(torch.stack([sums[k].float() for k in keys]), reduction="mean")
            sums = dict(zip(keys, mean.unbind()))
        return {"sums": {k: v.cpu() for k, v in sums.items()}, "counts": dict(self.counts), "iterations": self.iterations}

    def load_state(self, state: dict) -> None:
        """Continue the window a checkpoint saved (`state`)."""
        self.sums = {k: v.to(self.acc.device) for k, v in state["sums"].items()}
        self.counts, self.iterations = dict(state["counts"]), int(state["iterations"])

    def restart_clock(self) -> None:
        """The iteration rate is measured from now (the start of training)."""
        self.start = time.perf_counter()

    def flush(self, step: int, checkpoint_step: Optional[int]) -> dict[str, float]:
        """Average the window's losses (over iterations and processes); one host sync. Starts a new window."""
        if not self.sums:
            return {}
        keys = sorted(self.sums)
        values = torch.stack([self.sums[k].float() / self.counts[k] for k in keys])
        if self.acc.num_processes > 1:
            values = self.acc.reduce(values, reduction="mean")
        floats = values.tolist()
        elapsed = time.perf_counter() - self.start
        out = {f"train/{k}": v for k, v in zip(keys, floats)}
        out["perf/it_per_s"] = self.iterations / max(elapsed, 1e-9)
        self.sums, self.counts, self.iterations, self.start = {}, {}, 0, time.perf_counter()
        bad = [k for k, v in out.items() if not np.isfinite(v)]
        if bad:
            raise DivergedError(step, bad[0], checkpoint_step)
        return out
