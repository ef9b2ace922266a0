"""What a checkpoint holds of the training, besides the trainer's own counters, and its restoring.

- `training_state` / `load_training_state`: the networks, optimizer moments, lr schedules, grad
  scaler, RNG streams and the task's extra state (e.g. CycleGAN's image pools), under the keys
  `modules`, `optimizers`, `schedulers`, `scaler`, `rng`, `task` of the checkpoint.
- `rng_states` / `restore_rng_states`: every process's torch, data, Python, NumPy (and CUDA) RNG
  states, gathered into the checkpoint and restored per rank, so that a resumed run draws the same
  batches as one that never stopped. `side_rng`: sampling for grids and evaluation does not move them.
- `task_process_states` / `restore_task_process_states`: the same for a task's own per-process state
  (CycleGAN: each rank's image pools and kept batch), under `task_processes`, when the task has one.
- `make_schedulers`: the optional linear lr decay (`trainer.lr_decay=linear`).
- `configured_hyperparameters` / `apply_configured_hyperparameters`: the checkpoint keeps only
  the optimizer moments; on resume the config's lr, betas, ... win over the checkpoint's, so that
  "lower the learning rate and resume" does what it says.
"""

from __future__ import annotations

import logging
import random
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Optional

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from gan_platform.errors import UserError

log = logging.getLogger("gan_platform.training.trainer")  # the training loop's messages keep one logger name

# Optimizer settings taken from the config on resume (the checkpoint keeps only the moments).
HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "momentum", "alpha", "dampening")

Schedulers = dict[str, torch.optim.lr_scheduler.LambdaLR]


def rng_state(data_generator: torch.Generator) -> dict[str, Any]:
    """This process's RNG states (NumPy's as a tensor, so that the checkpoint loads weights-only)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "data": data_generator.get_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], data_generator: torch.Generator) -> None:
    """Restore what `rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["data"].numel() == data_generator.get_state().numel():
        data_generator.set_state(state["data"])
    else:  # a CPU checkpoint resumed on a GPU or back: the generators' states are of different kinds
        log.warning("The checkpoint's data stream was drawn on another kind of device than this run's (%s): "
                    "the data stream restarts from the seed.", data_generator.device.type)
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rng_states(acc: Accelerator, data_generator: torch.Generator) -> list[dict[str, Any]]:
    """Every process's RNG states, in rank order; a collective when there are several processes."""
    rng = rng_state(data_generator)
    return gather_object([rng]) if acc.num_processes > 1 else [rng]


def restore_rng_states(rngs: list[dict[str, Any]], acc: Accelerator, data_generator: torch.Generator) -> None:
    """This rank's streams from `rng_states`' list; with another process count they restart from the seed."""
    if len(rngs) == acc.num_processes:
        set_rng_state(rngs[acc.process_index], data_generator)
    elif acc.is_main_process:
        log.warning("The checkpoint was written by %d processes and this run has %d: RNG streams restart from the seed.",
                    len(rngs), acc.num_processes)


def task_process_states(acc: Accelerator, task: Any) -> Optional[list[dict[str, Any]]]:
    """Every process's own task state (`task.process_state()`), in rank order, or None when the task
    keeps none (a task keeps it on every process or on none, so every rank skips the collective alike);
    a collective when there are several processes."""
    mine = task.process_state()
    if not mine:
        return None
    return gather_object([mine]) if acc.num_processes > 1 else [mine]


def restore_task_process_states(states: Optional[list[dict[str, Any]]], acc: Accelerator, task: Any) -> None:
    """This rank's own entry of `task_process_states`' list; with another process count the state
    restarts fresh on every rank (one warning)."""
    if not states:
        return
    if len(states) == acc.num_processes:
        task.load_process_state(states[acc.process_index])
    elif acc.is_main_process:
        log.warning("The checkpoint holds the task's per-process state (CycleGAN: image pools) of %d processes and this "
                    "run has %d: it restarts empty on every process.", len(states), acc.num_processes)


@contextmanager
def side_rng(seed: int, step: int) -> Iterator[None]:
    """Sampling for grids and evaluation must not move the training RNG streams: fork them, seeded by step."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed + 7919 * (step + 1))
        yield


def make_schedulers(optimizers: Mapping[str, torch.optim.Optimizer], lr_decay: str, lr_decay_start: float,
                    steps: int) -> Schedulers:
    """`lr_decay=linear`: lr factor 1 until `lr_decay_start * steps`, then linearly to 0 at `steps`."""
    if lr_decay == "none":
        return {}
    start = int(lr_decay_start * steps)
    span = max(1, steps - start)

    def linear(step: int) -> float:  # 1 until `start`, then linearly to 0 at `steps`
        return 1.0 - max(0, step - start) / span

    # On the inner optimizer: tasks step it directly (optim.hot_optimizer), and a scheduler on
    # Accelerate's wrapper would not see those steps (and warn that it runs before them).
    return {name: torch.optim.lr_scheduler.LambdaLR(getattr(opt, "optimizer", opt), linear)
            for name, opt in optimizers.items()}


def configured_hyperparameters(optimizers: Mapping[str, torch.optim.Optimizer],
                                scheduled: Optional[Mapping[str, set[str]]] = None) -> dict[str, list[dict[str, Any]]]:
    """The config's settings of every param group, read before a checkpoint can overwrite them; the
    settings a schedule owns (`scheduled`: side -> {"lr", "betas"}) are left out: the schedule sets them."""
    owned = scheduled or {}
    return {name: [{k: g[k] for k in HYPERPARAMETERS if k in g and k not in owned.get(name, ())} for g in opt.param_groups]
            for name, opt in optimizers.items()}


def apply_configured_hyperparameters(optimizers: Mapping[str, torch.optim.Optimizer], schedulers: Schedulers,
                                     configured: dict[str, list[dict[str, Any]]], announce: bool) -> None:
    """After loading optimizer and scheduler states: the config's lr, betas, ... win (logged if `announce`)."""
    for name, opt in optimizers.items():
        sched = schedulers.get(name)
        for i, (group, wanted) in enumerate(zip(opt.param_groups, configured[name])):
            changed = {k: (group.get(k), v) for k, v in wanted.items() if group.get(k) != v and k != "lr"}
            if "lr" in wanted and group.get("initial_lr", group.get("lr")) != wanted["lr"]:
                changed["lr"] = (group.get("initial_lr", group.get("lr")), wanted["lr"])
            if changed and announce:
                log.warning("Resuming with the config's %s optimizer settings: %s.", name,
                            ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items()))
            group.update(wanted)
            if sched is not None:
                group["initial_lr"] = sched.base_lrs[i] = wanted["lr"]
                group["lr"] = wanted["lr"] * sched.lr_lambdas[i](sched.last_epoch)


def training_state(acc: Accelerator, task: Any, schedulers: Schedulers, data_generator: torch.Generator) -> dict[str, Any]:
    """The checkpoint's training part; a collective (the RNG gather): every rank calls it."""
    rngs = rng_states(acc, data_generator)
    return {
        "modules": {k: acc.unwrap_model(m).state_dict() for k, m in task.modules.items()},
        "optimizers": {k: o.state_dict() for k, o in task.optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
        "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
        "rng": rngs,
        "task": task.extra_state(),
        "model_args": task.model_args,  # a checkpoint alone rebuilds the networks (runs/loading.py)
        "task_processes": task_process_states(acc, task),  # collective, like the RNG gather
    }


def load_training_state(state: dict[str, Any], acc: Accelerator, task: Any, schedulers: Schedulers,
                        configured: dict[str, list[dict[str, Any]]], data_generator: torch.Generator) -> None:
    """Restore what `training_state` wrote; the optimizer settings `configured` (from the config) win."""
    try:
        for k, m in task.modules.items():
            acc.unwrap_model(m).load_state_dict(state["modules"][k])
        for k, o in task.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
    except (KeyError, RuntimeError, ValueError) as e:
        raise UserError(f"The checkpoint does not fit this run's model or optimizer config ({str(e).splitlines()[0]}): "
                        "resume with the config the run was started with.") from e
    for k, s in schedulers.items():
        if k in state.get("schedulers", {}):
            s.load_state_dict(state["schedulers"][k])
    apply_configured_hyperparameters(task.optimizers, schedulers, configured, announce=acc.is_main_process)
    if acc.scaler is not None and state.get("scaler"):
        acc.scaler.load_state_dict(state["scaler"])
    restore_rng_states(state["rng"], acc, data_generator)
    task.load_extra_state(state.get("task", {}))
    restore_task_process_states(state.get("task_processes"), acc, task)
