"""Fine-tuning: `trainer.init_from=RUN_DIR|CHECKPOINT` starts a new run from another run's networks.

The new run takes the source checkpoint's networks, G, D and G's moving average (CycleGAN: both
generators, both discriminators and the averages), and nothing else: not its optimizer moments, its
step, its learning-rate schedule, its augmentation probability or its RNG streams. It trains from
step 0 with its own config, as a run that happened to start from trained weights (FreezeD's
`model.discriminator.freeze` then keeps D's first blocks as they were, models/freeze.py).

- The networks must be the same networks: each one's constructor arguments in this run
  (`model_args`, every key the config and the data decide) must equal the source checkpoint's, the
  constructor's defaults filled in on both sides. Keys that only say how a network trains
  (`TRAINING_ONLY`: FreezeD's `freeze`) may differ. Any other difference is refused in one sentence
  naming the network and the key, before training. A checkpoint too old to hold `model_args` is
  checked by loading the weights alone.
- A generator's average: this run's `<name>_ema` (trainer.ema) starts as the source's average where
  it has one, else as the source's generator itself; a source average this run does not keep is not used.
- The source is only read: its files are not moved, rewritten or locked. A run that resumes from its
  own checkpoint (trainer.resume, or a requeued job) continues that checkpoint: `init_from` only
  decides how a run starts.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any, Optional

from gan_platform.errors import ConfigError, UserError
from gan_platform.runs.checkpoint import resolve_checkpoint, verify_checkpoint
from gan_platform.runs.loading import AVERAGE_SUFFIX

log = logging.getLogger("gan_platform.training.trainer")  # the training loop's messages keep one logger name

TRAINING_ONLY = ("freeze",)  # constructor arguments that change how a network trains, not what it is
SHOWN = 2  # differing keys named in the refusal


def check_init_from(spec: Optional[str]) -> Optional[Path]:
    """`trainer.init_from` names a checkpoint: its folder (meta.json is read, not the weights); one
    sentence otherwise. Run with the other config checks, before any work."""
    if not spec:
        return None
    if not Path(spec).exists():
        raise ConfigError(f"trainer.init_from='{spec}' does not exist: pass the run dir (or a checkpoint folder) of "
                          "the trained run to start from.")
    try:
        return resolve_checkpoint(spec)
    except UserError as e:
        raise ConfigError(f"trainer.init_from='{spec}' holds no complete checkpoint of this platform: pass a run dir "
                          "with checkpoints/last, or a checkpoint folder.") from e


def _with_defaults(args: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments with the constructor's defaults filled in (when its `_target_` imports)."""
    from hydra.utils import get_class

    try:
        params = inspect.signature(get_class(str(args.get("_target_")))).parameters
    except Exception:  # noqa: BLE001 - an unknown target is compared as written
        return dict(args)
    return {**{k: p.default for k, p in params.items() if p.default is not p.empty}, **args}


def _differences(mine: dict[str, Any], theirs: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    a, b = _with_defaults(theirs), _with_defaults(mine)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k not in TRAINING_ONLY and a.get(k) != b.get(k)]


def _sources(names: list[str], stored: dict[str, Any], folder: Path) -> dict[str, str]:
    """Each network of this run -> the source network it starts as (module docstring)."""
    sources = {}
    for name in names:
        base = name[:-len(AVERAGE_SUFFIX)] if name.endswith(AVERAGE_SUFFIX) else name
        sources[name] = name if name in stored else base
    missing = sorted(name for name, source in sources.items() if source not in stored)
    if missing:
        have = ", ".join(sorted(n for n in stored if not n.endswith(AVERAGE_SUFFIX)))
        raise UserError(f"trainer.init_from='{folder}' holds the networks {have}, and this run trains "
                        f"{', '.join(n for n in names if not n.endswith(AVERAGE_SUFFIX))}: start from a run of the same task.")
    return sources


def _check_same_networks(task: Any, sources: dict[str, str], stored_args: dict[str, Any], folder: Path) -> None:
    for name, source in sources.items():
        mine, theirs = getattr(task, "model_args", {}).get(name), stored_args.get(source)
        if mine is None or theirs is None:
            continue  # no arguments to compare: the weights' shapes decide (init_networks)
        rows = _differences(mine, theirs)
        if rows:
            shown = "; ".join(f"{k} {a!r} there, {b!r} here" for k, a, b in rows[:SHOWN])
            more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
            raise UserError(f"trainer.init_from='{folder}' holds another {source} than this run's ({shown}{more}): "
                            "fine-tuning starts from the same networks, so set model.* (and the data's shape and "
                            "classes) as the source run had them.")


def init_networks(acc: Any, task: Any, spec: str) -> dict[str, Any]:
    """Load the networks of the checkpoint `spec` names into `task.modules` (module docstring);
    returns where they came from, for summary.json and the checkpoints."""
    folder = check_init_from(spec)
    state, meta = verify_checkpoint(folder)
    stored = state["modules"]
    sources = _sources(list(task.modules), stored, folder)
    _check_same_networks(task, sources, state.get("model_args") or {}, folder)
    for name, source in sources.items():
        try:
            acc.unwrap_model(task.modules[name]).load_state_dict(stored[source])
        except RuntimeError as e:
            raise UserError(f"trainer.init_from='{folder}' holds another {source} than this run's (its weights do not "
                            "fit): fine-tuning starts from the same networks, so set model.* as the source run had "
                            "them.") from e
    log.info("Started from the networks of %s (step %d): %s.", folder, meta["step"],
             ", ".join(f"{n} <- {s}" if n != s else n for n, s in sources.items()))
    return {"checkpoint": str(folder), "step": int(meta["step"]), "sha256": meta["sha256"]}
