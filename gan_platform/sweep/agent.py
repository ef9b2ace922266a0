"""What a trial started by `wandb agent` adds to its own config, read from the agent's environment.

`wandb agent` runs each trial as `/usr/bin/env python -m gan_platform ... key=value ...` with
WANDB_SWEEP_ID, WANDB_RUN_ID and WANDB_SWEEP_PARAM_PATH set. `wandb.init` reads those by itself
and attaches the run to the sweep (a project, entity or run id passed to it is ignored in a
sweep), so the platform passes nothing that would fight them. This module only adds overrides:

- the run dir is `outputs/sweeps/<sweep id>/<run id>`: one folder per sweep as with the local
  runner, and trials of parallel agents never share a timestamped dir;
- `trainer.resume=auto` when that dir already holds a checkpoint (the agent restarts a
  preempted run under the same run id);
- `tracker=wandb` and `tracker.mode=online` where that tracker exists: the sweep's server must
  see the metric it optimises, so an offline run cannot serve a sweep.
Each applies only where the command line does not set the key itself.

When the server stops a trial (hyperband early termination), the agent sends it SIGTERM; the
trial saves a checkpoint and ends with status `stopped_by_sweep` and exit code 0, so that the agent
does not count it as a failed run (training/stopping.py). Ctrl-C in the agent's terminal reaches the trial
as SIGINT and stays `interrupted` (exit 130).

W&B locks the sweep's parameters in the run's config: when the tracker later logs the whole
Hydra config, a parameter that names a config group (`loss=hinge`) keeps the sweep's value under
its key, which is what the server's grid and bayes search match runs by.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from omegaconf import DictConfig

from gan_platform.training.stopping import in_wandb_sweep


def _set(argv: list[str], key: str) -> bool:
    return any(a.lstrip("+~").split("=", 1)[0] == key for a in argv)


def agent_overrides(argv: list[str], cfg: DictConfig, tracker_options: list[str],
                    compose: Optional[Callable[[list[str]], DictConfig]] = None) -> list[str]:
    """Overrides a trial of a W&B sweep adds to `argv` (none outside one)."""
    if not in_wandb_sweep():
        return []
    extra: list[str] = []
    if not _set(argv, "hydra.run.dir") and not os.environ.get("GAN_RUN_DIR"):
        run_dir = Path("outputs") / "sweeps" / os.environ["WANDB_SWEEP_ID"] / os.environ["WANDB_RUN_ID"]
        extra.append(f"hydra.run.dir={run_dir}")
        if not _set(argv, "trainer.resume") and (run_dir / "checkpoints" / "last").is_dir():
            extra.append("trainer.resume=auto")
    if "wandb" in tracker_options and not _set(argv, "tracker"):
        extra.append("tracker=wandb")
        tracker = compose(argv + extra).tracker if compose is not None else cfg.tracker
        if "mode" in tracker and not _set(argv, "tracker.mode"):
            extra.append("tracker.mode=online")
    return extra
