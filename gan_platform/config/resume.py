"""Which run `trainer.resume=auto` continues, and the command that continues a given run.

`trainer.resume=auto` continues the newest run dir of the same experiment that no live process
holds, that has more to do (`unfinished`), and that *this command made*: its saved config
(`.hydra/config.yaml`) agrees with the composed one on every key that decides what is trained.
Keys a resume may change are the exceptions (`MAY_CHANGE`): the length (`trainer.steps`), the
cadences and progress bar, the optimizer's hyperparameters (the config wins over the checkpoint's:
"lower the learning rate and resume"), evaluation, tracking and the report. Everything else (the
networks, the data, the loss, the task, augmentation, the seed, batch size, critic steps, EMA,
precision, the learning-rate schedule) must match; a run that differs is another experiment's
even under the same name (a wgan_gp run on photos is not the wgan_gp run on digits). Keys the
run's saved config lacks came with a later version of the platform and are not compared.

When the newest unfinished run of the experiment differs and no other matches, the command is
refused in one sentence that names the keys that differ and gives the exact command that continues
that run (`resume_command`, from its `.hydra/overrides.yaml`). Runs without a saved config (made
outside the command line) cannot be compared and are taken as matching.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import DictConfig, OmegaConf

from gan_platform.errors import UserError
from gan_platform.runs.status import Status, is_done

MAY_CHANGE = ("trainer.resume", "trainer.steps", "trainer.progress", "trainer.log_every", "trainer.sample_every",
              "trainer.checkpoint_every", "trainer.grid_size", "optimizer.", "eval.", "tracker.", "report")
SHOWN = 3  # differing keys named in the refusal


def _may_change(key: str) -> bool:
    if key.startswith("optimizer.") and key.endswith("_target_"):
        return False  # another optimizer cannot take the checkpoint's state
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in MAY_CHANGE)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"model.generator.width": 64, ...} of a nested dict (lists are values)."""
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        out.update(flatten(v, f"{prefix}{k}."))
    return out


def _container(cfg: Any) -> dict[str, Any]:
    """A config as plain values, resolved where it can be (a saved config's interpolations)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:  # noqa: BLE001 - an interpolation that no longer resolves: compare as written
        return OmegaConf.to_container(cfg, resolve=False)


def config_differences(saved: DictConfig, cfg: DictConfig) -> list[tuple[str, Any, Any]]:
    """(key, the run's value, this command's value) for every key that must match and does not
    (a key this command lacks counts, its value shown as None). A key the run's saved config lacks
    is not compared: the platform gained it after the run was made (`trainer.micro_batch`,
    `task.phases`, `model.discriminator.freeze`, ...), and the run trained as its default says, so
    an upgrade does not orphan the runs it finds unfinished."""
    a, b = flatten(_container(saved)), flatten(_container(cfg))
    missing = object()
    rows = []
    for key in sorted(a):
        if _may_change(key) or key.startswith("hydra."):
            continue
        mine, theirs = a[key], b.get(key, missing)
        if mine != theirs:
            rows.append((key, mine, None if theirs is missing else theirs))
    return rows


def saved_config(run_dir: Path) -> Optional[DictConfig]:
    path = run_dir / ".hydra" / "config.yaml"
    try:
        return OmegaConf.load(path) if path.is_file() else None
    except Exception:  # noqa: BLE001 - an unreadable saved config cannot be compared
        return None


def unfinished(run_dir: Path, steps: int) -> bool:
    """Has `run_dir` more to do: its last checkpoint is short of `steps`, or it holds the final step
    but the run never said it ended (killed before its final evaluation), or it has no checkpoint
    yet and says `running` (killed before its first one: it starts over there)?"""
    from gan_platform.runs.checkpoint import find_checkpoint, read_meta
    from gan_platform.runs.rundir import RunDir

    ckpt = find_checkpoint(run_dir / "checkpoints" / "last")
    if ckpt is None and (run_dir / "checkpoints" / "last").exists():  # a damaged last/: resume falls back to best/
        ckpt = find_checkpoint(run_dir / "checkpoints" / "best")
    status = RunDir(run_dir).read_summary().get("status")
    if ckpt is None:
        return status == Status.RUNNING
    step = (read_meta(ckpt) or {}).get("step", steps)
    return step < steps or (step == steps and status is not None and not is_done(status))


def find_resumable(name: str, steps: int, root: Path = Path("outputs"), cfg: Optional[DictConfig] = None) -> Optional[Path]:
    """The newest unfinished run dir of experiment `name` that no live process holds and whose
    saved config matches `cfg` (module docstring); None when there is none. Refused in one sentence
    when unfinished runs exist and none matches."""
    from gan_platform.runs.rundir import RunDir

    base = root / name
    if not base.is_dir():
        return None
    others: list[tuple[Path, list]] = []
    for d in sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True):
        if RunDir(d).in_use() or not unfinished(d, steps):  # a live run is not ours to continue
            continue
        saved = saved_config(d) if cfg is not None else None
        differences = config_differences(saved, cfg) if saved is not None else []
        if not differences:
            return d
        others.append((d, differences))
    if others:
        raise UserError(_refusal(name, *others[0]))
    return None


def _refusal(name: str, run_dir: Path, differences: list[tuple[str, Any, Any]]) -> str:
    shown = "; ".join(f"{k}: {a!r} there, {b!r} here" for k, a, b in differences[:SHOWN])
    more = f" and {len(differences) - SHOWN} more key(s)" if len(differences) > SHOWN else ""
    return (f"trainer.resume=auto found no unfinished '{name}' run with this config: the newest, '{run_dir}', differs "
            f"in {shown}{more}; continue it with `{resume_command(run_dir.resolve())}`, or drop trainer.resume to start a new run.")


def resume_command(run_dir: Path, overrides: Optional[list[str]] = None) -> str:
    """The command that continues `run_dir`: its own overrides (`overrides`, or its
    .hydra/overrides.yaml) with trainer.resume pointing at it."""
    if overrides is None:
        path = run_dir / ".hydra" / "overrides.yaml"
        try:
            overrides = [str(o) for o in (yaml.safe_load(path.read_text()) or [])] if path.is_file() else []
        except (OSError, yaml.YAMLError):
            overrides = []
    kept = [o for o in overrides if o.lstrip("+~").split("=", 1)[0] not in ("trainer.resume", "hydra.run.dir")]
    return shlex.join(["python", "-m", "gan_platform", *kept, f"trainer.resume={run_dir}"])
