"""Loading a trained model: one loader for `gan_platform.sample`, `gan_platform.translate` and
whatever else reads trained networks back.

A checkpoint holds each network's constructor arguments beside its weights (`model_args`: the
`_target_` and every argument, as nanoGPT's checkpoints do), so the checkpoint alone rebuilds the
networks: no run builder, no dataset, no config composition. Checkpoints written before
`model_args` existed are rebuilt from the run dir's `.hydra/config.yaml` and the shapes the
checkpoint's task state records. A generator trained with `trainer.ema` is stored twice: as itself
and as its moving average `<name>_ema` (training/ema.py); the loader gives the average unless asked
for the raw network (`raw=True`). Weights are loaded safely (`weights_only`, checkpoint.py), and
every network comes back in eval mode, on the CPU, without gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_platform.errors import UserError, instantiate
from gan_platform.runs.checkpoint import load_checkpoint, resolve_checkpoint

AVERAGE_SUFFIX = "_ema"  # a network's moving average is kept in a checkpoint as `<name>_ema` (training/ema.py)


@dataclass
class TrainedModel:
    """Networks of a trained run, rebuilt from one checkpoint."""

    modules: dict[str, nn.Module]
    task: str                      # the task that trained them: gan, cyclegan
    task_state: dict[str, Any]     # what the task recorded (sample shape, classes, image shape, ...)
    run_dir: Optional[Path]        # None for a checkpoint outside a run dir
    checkpoint: Path
    step: int
    model_args: dict[str, dict[str, Any]] = field(default_factory=dict)  # what each network was built with
    averaged: tuple[str, ...] = ()  # the names whose moving average (trainer.ema) was loaded
    cfg: Optional[DictConfig] = field(default=None, repr=False)  # the run's composed config, when at hand


def find_run_dir(path: str | Path, checkpoint: str = "last") -> tuple[Optional[Path], Path]:
    """(run dir or None, checkpoint folder) for a run dir (its checkpoints/`checkpoint`), its
    checkpoints/ dir or a checkpoint folder."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"'{p}' does not exist: pass a run dir (outputs/NAME/TIME) or a checkpoint folder in one.")
    if (p / ".hydra" / "config.yaml").is_file() and checkpoint != "last":
        return p, resolve_checkpoint(p / "checkpoints" / checkpoint)
    ckpt = resolve_checkpoint(p)
    for candidate in (p, ckpt.parent.parent):
        if (candidate / ".hydra" / "config.yaml").is_file():
            return candidate, ckpt
    return None, ckpt


def _legacy_args(cfg: DictConfig, task: str, name: str, task_state: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments of a network from a checkpoint without `model_args`: the run's config
    and the shapes its task state records (the data scale of 2-D networks is a buffer in the weights)."""
    node = OmegaConf.to_container(cfg.model.generator if name.startswith("generator") else cfg.model.discriminator,
                                  resolve=True)
    if task == "cyclegan":
        shape = [int(s) for s in task_state["image_shape"]]
        return {**node, "in_shape": shape, "out_shape": shape} if name.startswith("generator") else {**node, "in_shape": shape}
    if task_state.get("sample_shape"):
        shape, num_classes = list(task_state["sample_shape"]), int(task_state.get("num_classes") or 0)
    else:  # older still: the checkpoint does not say what G was built for; the run's dataset does
        dataset = instantiate(cfg.dataset)
        conditional = bool(OmegaConf.select(cfg, "task.conditional"))
        shape, num_classes = list(dataset.sample_shape), int(dataset.num_classes or 0) if conditional else 0
    scale = {"scale": 1.0} if "data_scale" in cfg.model else {}
    return {**node, "out_shape": shape, "z_dim": int(cfg.model.z_dim), "num_classes": num_classes, **scale}


def load_trained(path: str | Path, names: tuple[str, ...], checkpoint: str = "last",
                 task: Optional[str] = None, raw: bool = False) -> TrainedModel:
    """The networks `names` of the run or checkpoint at `path` (checkpoints/`checkpoint` of a run
    dir), each as its moving average where the checkpoint holds one, unless `raw`; `task` refuses a
    run of another task with one sentence."""
    run_dir, ckpt = find_run_dir(path, checkpoint)
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml") if run_dir is not None else None
    state, meta = load_checkpoint(ckpt)
    trained_by = str(OmegaConf.select(cfg, "task.name") if cfg is not None else state.get("task_name", "gan"))
    if task is not None and trained_by != task:
        raise UserError(f"'{run_dir or ckpt}' is a {trained_by} run, not a {task} run: pass a run of a {task} experiment.")
    task_state = state.get("task") or {}
    model_args = state.get("model_args") or {}
    modules, used, averaged = {}, {}, []
    for name in names:
        stored = name + AVERAGE_SUFFIX
        average_args = model_args.get(stored, model_args.get(name))  # an average is built as the network it averages
        if not raw and stored in state.get("modules", {}) and average_args is not None:
            module = instantiate(average_args)
            module.load_state_dict(state["modules"][stored])
            modules[name], used[name] = module.eval().requires_grad_(False), average_args
            averaged.append(name)
            continue
        if name in model_args:
            args = model_args[name]
        elif cfg is not None:
            args = _legacy_args(cfg, trained_by, name, task_state)
        else:
            raise UserError(f"The checkpoint '{ckpt}' holds no constructor arguments and has no run dir around it: "
                            "pass the run dir the checkpoint was written in.")
        module = instantiate(args)
        try:
            module.load_state_dict(state["modules"][name])
        except (KeyError, RuntimeError) as e:
            where = f"{run_dir}/.hydra/config.yaml" if run_dir is not None and name not in model_args else "its constructor arguments"
            raise UserError(f"The checkpoint '{ckpt}' does not fit the {name} of {where}: "
                            "pass the run dir the checkpoint was written in.") from e
        modules[name], used[name] = module.eval().requires_grad_(False), args
    return TrainedModel(modules, trained_by, task_state, run_dir, ckpt, int(meta.get("step", state.get("step", 0))),
                        model_args=used, averaged=tuple(averaged), cfg=cfg)
