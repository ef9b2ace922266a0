"""Divergence: a NaN/inf in the losses not yet logged or in any parameter or float buffer.

Checked at every log step and before every checkpoint, so that no checkpoint holds a non-finite
state. The flags are reduced over all processes, so that every rank stops together.
"""

from __future__ import annotations

from typing import Mapping, Optional

import torch
from accelerate import Accelerator
from torch import nn

from gan_platform.errors import DivergedError


def check_finite(acc: Accelerator, modules: Mapping[str, nn.Module], pending: Mapping[str, torch.Tensor],
                 step: int, checkpoint_step: Optional[int]) -> None:
    """Raise DivergedError naming the first non-finite thing: a pending loss (`train/<key>`) or a module."""
    checks = [(f"train/{k}", torch.isfinite(v).all()) for k, v in sorted(pending.items())]
    for name, m in modules.items():
        tensors = [t for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
        if tensors:
            checks.append((f"a parameter or buffer of the {name}", torch.stack([torch.isfinite(t).all() for t in tensors]).all()))
    if not checks:
        return
    bad = torch.stack([~ok for _, ok in checks]).float()
    if acc.num_processes > 1:
        bad = acc.reduce(bad, reduction="sum")
    flags = bad.tolist()
    for (what, _), flag in zip(checks, flags):
        if flag > 0:
            raise DivergedError(step, what, checkpoint_step)
