"""Optimizers: one per side (TTUR), built fused where PyTorch has a fused kernel, and stepped without per-step overhead.

- `optimizer_config`: the settings of one side. `optimizer.*` holds the shared settings;
  `optimizer.generator.*` and `optimizer.discriminator.*` (lr, betas, weight_decay; null by
  default) override them for G or D, so `optimizer.lr=1e-4` still sets both and
  `optimizer.discriminator.lr=4e-4` gives D its own (the two time-scale update rule, Heusel et al. 2017).
- `build_optimizer`: the config's optimizer (a `_partial_` node) over the parameters that train (a
  frozen one, FreezeD's `model.discriminator.freeze`, is not the optimizer's), with ``fused=True`` when the
  class takes it (Adam, AdamW, SGD, Adagrad on CPU and GPU): one kernel for all parameters instead
  of a loop of small ops, about 3x faster an Adam step on the CPU for this platform's networks.
  A config that sets ``fused`` or ``foreach`` itself (``+optimizer.fused=false``) is left alone.
- `descend`: one update of one side (zero_grad, backward, health signals, step), for every task.
- `hot_optimizer`: what a task's training step should call ``zero_grad``/``step`` on.
  Accelerate's optimizer wrapper checks for an optional package on every ``step`` and inspects a
  signature on every ``zero_grad``: on small networks that costs more than the update itself.
  Without a gradient scaler (fp16) or XLA, the wrapper only forwards the call, so the task calls
  the wrapped optimizer directly; with a scaler it keeps the wrapper, which runs the scaler's step.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable, Iterable, Optional

import torch
from accelerate import Accelerator
from accelerate.optimizer import AcceleratedOptimizer
from accelerate.utils import DistributedType
from omegaconf import DictConfig, OmegaConf

SIDES = ("generator", "discriminator")  # optimizer.<side>.* overrides the shared optimizer.* for that side


def optimizer_config(node: DictConfig, side: Optional[str] = None) -> DictConfig:
    """The optimizer settings of `side` (generator or discriminator; None: the shared ones): the
    shared keys of `node`, each replaced by a non-null `node.<side>.<key>`."""
    settings = OmegaConf.to_container(node, resolve=True)
    own = {k: v for k, v in (settings.get(side) or {}).items() if v is not None} if side else {}
    shared = {k: v for k, v in settings.items() if k not in SIDES}
    return OmegaConf.create({**shared, **own})


def build_optimizer(node: DictConfig, params: Iterable[torch.nn.Parameter], side: Optional[str] = None) -> torch.optim.Optimizer:
    """Instantiate the optimizer config `node` for `side` (see `optimizer_config`) on those of `params`
    that require gradients, fused where that is supported."""
    from gan_platform.errors import instantiate

    node = optimizer_config(node, side)
    factory = instantiate(node)
    params = [p for p in params if p.requires_grad]
    cls = getattr(factory, "func", factory)
    wants_default = "fused" not in node and "foreach" not in node
    if wants_default and "fused" in inspect.signature(cls).parameters:
        try:
            return factory(params=params, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a device or dtype without the fused kernel
            pass
    return factory(params=params)


def loss_scale(acc: Accelerator) -> float:
    """fp16's gradient-scaler factor (what losses were multiplied by before backward); 1 without a scaler."""
    return acc.scaler.get_scale() if acc.scaler is not None else 1.0


def descend(acc: Accelerator, optimizer: Any, losses: Any, measure: Optional[Callable[[], dict[str, torch.Tensor]]] = None,
            rounds: int = 1, module: Optional[torch.nn.Module] = None) -> dict[str, torch.Tensor]:
    """One update of one side, the same in every task: clear the gradients, backpropagate the loss,
    take the health signals from the fresh gradients (`measure`, before the step changes the
    weights), step. `optimizer` is the step's (`hot_optimizer`). With gradient accumulation `losses`
    is an iterator of `rounds` losses (each computed when its turn comes, so one round's graph is
    freed before the next is built) whose gradients add up; every round but the last skips DDP's
    gradient all-reduce of `module`. Returns what `measure` measured ({} without it)."""
    optimizer.zero_grad(set_to_none=True)
    losses = iter([losses]) if isinstance(losses, torch.Tensor) else iter(losses)
    for i in range(rounds):
        with acc.no_sync(module) if module is not None and i < rounds - 1 else contextlib.nullcontext():
            acc.backward(next(losses))
    logs = measure() if measure is not None else {}
    optimizer.step()
    return logs


def hot_optimizer(acc: Accelerator, optimizer: Any) -> Any:
    """The optimizer to call in the training step (see the module docstring)."""
    # exactly Accelerate's own wrapper: DeepSpeed's subclass steps inside its engine
    if type(optimizer) is AcceleratedOptimizer and acc.scaler is None and acc.distributed_type != DistributedType.XLA:
        return optimizer.optimizer
    return optimizer
