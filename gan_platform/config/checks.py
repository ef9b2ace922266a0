"""The config checks: a wrong key, type or value is one sentence, before any work.

Three layers:
1. Structured configs (schema.py, in Hydra's ConfigStore as `schema`): typed fields of the
   fixed-shape groups (trainer, loss, top level); Hydra rejects a misspelt key or a value of the
   wrong type while composing.
2. `_target_` nodes (model, dataset, optimizer, tracker): every key must be a parameter of the target, and a
   parameter whose default is a number must get a number.
3. Ranges and combinations (`check_ranges`): positive learning rate, steps, batch size, ...;
   the rules of one task, tracker or network live in its own module as `check(cfg)` (`check_parts`).
`validate(cfg)` runs 2 and 3; `__main__` runs all three before Hydra creates a run dir.
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any

from hydra.utils import get_method, get_class
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from gan_platform.config.schema import PRECISIONS
from gan_platform.errors import ConfigError



# Keys of a `_target_` node that are not arguments of the target: Hydra's own, and `name`, which
# names a tracker choice.
_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_", "name"}
# Keys the platform supplies itself when it builds these objects.
_SUPPLIED = {"out_shape", "in_shape", "num_classes", "z_dim", "params", "scale", "accelerator"}


def _resolve_target(path: str, where: str):
    try:
        return get_class(path) if path.rsplit(".", 1)[-1][:1].isupper() else get_method(path)
    except Exception:  # noqa: BLE001
        try:
            return get_method(path)
        except Exception as e:  # noqa: BLE001
            raise ConfigError(f"{where}._target_ '{path}' cannot be imported: check the spelling of the class or function.") from e


def _check_target(node: DictConfig, where: str) -> None:
    target = _resolve_target(node["_target_"], where)
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    accepts_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in node.keys():
        key = str(key)
        if key in _HYDRA_KEYS:
            continue
        if key not in params and not accepts_kwargs:
            known = sorted(k for k in params if k not in _SUPPLIED and k not in ("self",) and
                           params[k].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD))
            raise ConfigError(f"Unknown key '{where}.{key}': {node['_target_']} takes {', '.join(known)}; check the spelling.")
        if key in params:
            default = params[key].default
            value = node[key]
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"{where}.{key} must be true or false, got {value!r}.")
            elif isinstance(default, (int, float)) and default is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ConfigError(f"{where}.{key} must be a number, got {value!r}.")
                whole = isinstance(default, int) and "float" not in str(params[key].annotation)  # torch: `weight_decay: float = 0`
                if whole and not isinstance(default, bool) and isinstance(value, float) and not value.is_integer():
                    raise ConfigError(f"{where}.{key} must be a whole number, got {value!r}.")


def _walk_targets(node: Any, where: str) -> None:
    if isinstance(node, DictConfig):
        if "_target_" in node:
            _check_target(node, where)
        for key in node.keys():
            child = node._get_node(key)
            if isinstance(child, (DictConfig, ListConfig)):
                _walk_targets(node[key], f"{where}.{key}")


def _positive(cfg: DictConfig, key: str, number_type: str = "number", allow_zero: bool = False) -> None:
    value = OmegaConf.select(cfg, key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a {number_type}, got {value!r}.")
    if not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {value}: set {key} to a finite value.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "positive"
        raise ConfigError(f"{key} must be {bound}, got {value}: set {key} to a {bound} {number_type}.")


def check_ranges(cfg: DictConfig) -> None:
    """Values that are the right type but make no sense."""
    for key in ("trainer.steps", "trainer.batch_size", "trainer.d_steps", "trainer.g_steps", "trainer.log_every",
                "trainer.grid_size"):
        _positive(cfg, key, "whole number")
    for key in ("trainer.sample_every", "trainer.checkpoint_every", "eval.every", "eval.early_stop_patience"):
        _positive(cfg, key, "whole number", allow_zero=True)
    for key in ("optimizer.lr", "optimizer.generator.lr", "optimizer.discriminator.lr"):
        _positive(cfg, key)
    for key in ("loss.gradient_penalty", "loss.weight_clip", "loss.r1_gamma", "loss.r2_gamma",
                "task.mismatch_weight", "task.cycle.weight", "task.identity_weight", "task.pool_size"):  # absent keys are skipped
        _positive(cfg, key, allow_zero=True)
    _positive(cfg, "model.discriminator.freeze", "whole number", allow_zero=True)  # beyond D's blocks: models/freeze.py
    for key in ("loss.reg_every", "augment.interval"):
        _positive(cfg, key, "whole number")
    _positive(cfg, "augment.speed_images", allow_zero=True)  # 0: ADA's p fixed (initial_p, or a schedule)
    for key in ("augment.target", "augment.initial_p"):
        value = OmegaConf.select(cfg, key)
        if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1):
            raise ConfigError(f"{key} is a probability in [0, 1], got {value!r}: set {key} between 0 and 1.")
    if cfg.trainer.precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision must be one of {', '.join(PRECISIONS)}, got '{cfg.trainer.precision}'.")
    if cfg.trainer.lr_decay not in ("none", "linear"):
        raise ConfigError(f"trainer.lr_decay must be none or linear, got '{cfg.trainer.lr_decay}'.")
    if not 0.0 <= cfg.trainer.lr_decay_start <= 1.0:
        raise ConfigError(f"trainer.lr_decay_start is a fraction of the steps in [0, 1], got {cfg.trainer.lr_decay_start}.")
    from gan_platform.evaluation.build import check_eval_config

    check_eval_config(cfg)  # eval.best_mode, sample counts, k, ...
    from gan_platform.training.schedules import check_schedules

    check_schedules(cfg)
    if "z_dim" in cfg.model:
        _positive(cfg, "model.z_dim", "whole number")
    if "data_scale" in cfg.model:
        scale = cfg.model.data_scale
        if scale != "auto" and (isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0):
            raise ConfigError(f"model.data_scale must be auto or a positive number, got '{scale}': "
                              "auto uses the radius of a mixture's modes (grid25: 4).")
    if not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"seed must be in [0, 2**32), got {cfg.seed}.")
    pack = OmegaConf.select(cfg, "model.discriminator.pack")
    if isinstance(pack, int) and pack > 1 and cfg.trainer.batch_size % pack:
        raise ConfigError(f"trainer.batch_size={cfg.trainer.batch_size} is not a multiple of model.discriminator.pack={pack}: "
                          "D judges samples in packs, so make the per-process batch size a multiple of the pack.")
    check_compile(cfg)
    from gan_platform.training.ema import check_ema
    from gan_platform.training.init_from import check_init_from

    check_ema(cfg.trainer.ema)
    check_init_from(cfg.trainer.get("init_from"))
    check_optimizer(cfg)
    check_parts(cfg)


def check_compile(cfg: DictConfig) -> None:
    """trainer.compile: a known mode, and no penalty on input gradients (torch.compile cannot take
    the gradient of a gradient); see tasks/speed.py."""
    from gan_platform.tasks.speed import COMPILE_MODES

    if cfg.trainer.compile_mode not in COMPILE_MODES:
        raise ConfigError(f"trainer.compile_mode must be one of {', '.join(COMPILE_MODES)}, got '{cfg.trainer.compile_mode}'.")
    if not cfg.trainer.compile:
        return
    penalties = [k for k in ("loss.gradient_penalty", "loss.r1_gamma", "loss.r2_gamma") if (OmegaConf.select(cfg, k) or 0) > 0]
    if penalties:
        raise ConfigError(f"trainer.compile=true cannot train with {penalties[0]} > 0: torch.compile does not support the "
                          "double backward of a gradient penalty; set trainer.compile=false for this run.")


def check_parts(cfg: DictConfig) -> None:
    """The rules of each pluggable part, kept beside it: the module that a task's or a tracker's
    `_target_` names may define `check(cfg)` (tasks/gan_build.py, tasks/cyclegan.py, tracking/wandb.py), and
    so may the module of a network of `model` (models/r3gan.py), once however many networks it builds."""
    nodes = [cfg.get(group) for group in ("task", "tracker")]
    if isinstance(cfg.get("model"), DictConfig):
        nodes += [cfg.model.get(part) for part in ("generator", "discriminator")]
    modules = dict.fromkeys(str(node._target_).rsplit(".", 1)[0] for node in nodes
                            if isinstance(node, DictConfig) and "_target_" in node)
    for name in modules:
        check = getattr(importlib.import_module(name), "check", None)
        if check is not None:
            check(cfg)


def check_optimizer(cfg: DictConfig) -> None:
    """Build each side's optimizer (tasks/optim.py) once on a dummy parameter: torch's own checks
    (betas in [0, 1), eps >= 0, ...) then fail here as one sentence, before any work, rather than
    as a traceback mid-build."""
    if "optimizer" not in cfg or not isinstance(cfg.optimizer, DictConfig) or "_target_" not in cfg.optimizer:
        return
    import torch

    from gan_platform.tasks.optim import SIDES, optimizer_config

    own = {side: cfg.optimizer.get(side) for side in SIDES}
    for side in (None, *(s for s in SIDES if isinstance(own[s], DictConfig) and any(v is not None for v in own[s].values()))):
        who, fix = ("The optimizer", "optimizer.*") if side is None else (f"The {side}'s optimizer", f"optimizer.{side}.*")
        try:
            factory = hydra_instantiate(optimizer_config(cfg.optimizer, side))
            factory(params=[torch.zeros(1, requires_grad=True)])
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{who} rejects its settings ({str(e).splitlines()[0]}): fix {fix} in the config.") from e
        except Exception as e:  # noqa: BLE001 - Hydra wraps the optimizer's own error
            cause = e.__cause__ or e.__context__
            if isinstance(cause, (ValueError, TypeError)):
                raise ConfigError(f"{who} rejects its settings ({str(cause).splitlines()[0]}): fix {fix} in the config.") from e
            raise


def _check_optimizer_keys(node: Any) -> None:
    """optimizer.* and each side's optimizer.<side>.* (tasks/optim.py) against the optimizer's arguments."""
    from gan_platform.tasks.optim import SIDES

    if not isinstance(node, DictConfig) or "_target_" not in node:
        return
    _check_target(OmegaConf.create({k: node._get_node(k) for k in node.keys() if k not in SIDES}), "optimizer")
    for side in SIDES:
        own = node.get(side)
        if isinstance(own, DictConfig):
            set_keys = {k: v for k, v in own.items() if v is not None}
            _check_target(OmegaConf.create({"_target_": node._target_, **set_keys}), f"optimizer.{side}")


def validate(cfg: DictConfig) -> None:
    """All config checks that need no data: target keys and types, then ranges."""
    for group in ("model", "dataset", "tracker", "augment"):
        if group in cfg and cfg[group] is not None:
            _walk_targets(cfg[group], group)
    if cfg.get("optimizer") is not None:
        _check_optimizer_keys(cfg.optimizer)
    check_ranges(cfg)
