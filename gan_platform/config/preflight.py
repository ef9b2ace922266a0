"""Pre-flight: compose and check the config before Hydra creates a run dir.

Hydra reports composition errors (unknown option, misspelt key, wrong type) as several lines; the
pre-flight here composes the same config first and turns each into one sentence that names the
problem and the fix (compose_errors.py), with exit code 2 and no run dir left behind. It also
resolves `trainer.resume` to the run dir being resumed (config/resume.py: the newest unfinished
run of the experiment whose config matches), so a resumed run writes into its own dir,
and refuses a run dir that cannot be one (an existing file) or that a live run holds. Used by the
command line, the sweep runner's checks and the multirun pre-flight.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from omegaconf import DictConfig

from gan_platform.config.compose_errors import explain_compose_error, group_options
from gan_platform.errors import UserError


DEFAULT_EXPERIMENT = "default"  # conf/experiment/default.yaml: the bare command's recipe


def append_experiment(argv: list[str]) -> list[str]:
    """`experiment=NAME` -> `+experiment=NAME`: experiment is not in the defaults list, so Hydra
    wants the `+`; W&B sweep parameter names cannot start with `+`, so a sweep passes it bare.
    With no experiment named, `+experiment=default` is added: the bare `python -m gan_platform` runs
    the recipe that covers the ring, while `compose("config")` (and `+experiment=none`) stays the
    config groups' own defaults. The default is a bundle rather than new group defaults so that no
    other bundle inherits its settings (every bundle states what it changes from the groups)."""
    argv = ["+" + a if a.split("=", 1)[0] == "experiment" else a for a in argv]
    if not any(a.lstrip("+~").split("=", 1)[0] == "experiment" for a in argv):
        # beside the other overrides: Hydra's parser takes them as one run of words (`a=1 --cfg job`)
        first = next((i for i, a in enumerate(argv) if "=" in a and not a.startswith("-")), len(argv))
        argv.insert(first, f"+experiment={DEFAULT_EXPERIMENT}")
    return argv


def _has_override(argv: list[str], key: str) -> bool:
    return any(a.lstrip("+~").split("=", 1)[0] == key for a in argv)


# What a caller adds to the overrides once the config is composed and checked: (argv, cfg, options of
# the tracker group, compose(more overrides) -> cfg) -> overrides. The command line passes the W&B
# agent's (sweep/agent.py), so that this package never imports the sweep package above it.
MoreOverrides = Callable[[list[str], DictConfig, list[str], Callable[[list[str]], DictConfig]], list[str]]


def preflight(argv: list[str], more_overrides: Optional[MoreOverrides] = None) -> list[str]:
    """Compose and check the config; returns extra overrides (`more_overrides`', the run dir of a
    resumed run)."""
    from hydra import compose, initialize_config_module

    from gan_platform.config import validate
    from gan_platform.training.distributed import check_gpus_for_processes

    check_gpus_for_processes()  # before any work: N processes that would each train alone are refused
    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        try:
            cfg = compose("config", overrides=argv)
        except Exception as e:  # noqa: BLE001 - every composition error becomes one sentence
            raise UserError(explain_compose_error(e)) from e
        validate(cfg)
        extra: list[str] = []
        if more_overrides is not None:
            extra += more_overrides(argv, cfg, group_options("tracker"), lambda more: compose("config", overrides=more))
    resume = cfg.trainer.resume
    if resume and not _has_override(argv + extra, "hydra.run.dir") and not os.environ.get("GAN_RUN_DIR"):
        if resume == "auto":
            from gan_platform.config.resume import find_resumable

            found = find_resumable(str(cfg.name), int(cfg.trainer.steps), cfg=cfg)
        else:
            from gan_platform.runs.checkpoint import resolve_checkpoint

            ckpt = resolve_checkpoint(resume)
            found = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
        if found is not None:
            extra.append(f"hydra.run.dir={found}")
    _check_pinned_run_dir(argv + extra)
    return extra


def _check_pinned_run_dir(argv: list[str]) -> None:
    """Before Hydra writes into it: a pinned run dir (hydra.run.dir, GAN_RUN_DIR) must be able to be
    a directory, and one that a live run holds is not to be shared."""
    from gan_platform.runs.rundir import RunDir

    pinned = [a.split("=", 1)[1] for a in argv if a.split("=", 1)[0] == "hydra.run.dir"]
    source = "hydra.run.dir"
    if not pinned and os.environ.get("GAN_RUN_DIR"):
        pinned, source = [os.environ["GAN_RUN_DIR"]], "GAN_RUN_DIR"
    if not pinned:
        return
    path = Path(pinned[-1]).expanduser()
    blocker = next((p for p in (path, *path.parents) if p.exists() or p.is_symlink()), None)
    if blocker is not None and not blocker.is_dir():
        where = "is an existing file" if blocker == path else f"lies under '{blocker}', an existing file"
        raise UserError(f"{source}='{pinned[-1]}' {where}, not a directory: point {source} at a new or "
                        "existing directory, or move the file away.")
    if _rank() == 0 and RunDir(pinned[-1]).in_use():
        raise UserError(f"Run dir '{pinned[-1]}' is in use by another running process: wait for it or stop it, "
                        "or start a separate run without trainer.resume.")




def _rank() -> int:
    """This process's rank under `accelerate launch` (0 outside it)."""
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
