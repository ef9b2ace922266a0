"""Build a run from its config: accelerator, data, task, evaluator, tracker; hand them to the trainer.

Data flows one way: config -> objects built here -> trainer drives task steps -> evaluator
measures -> tracker and run dir record.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list, set_seed
from omegaconf import DictConfig, OmegaConf

from gan_platform.config import instantiate, validate  # noqa: F401 - instantiate is also imported from here
from gan_platform.distributed import check_gpus_for_processes
from gan_platform.errors import ConfigError, UserError
from gan_platform.rundir import RunDir
from gan_platform.tasks.cyclegan import build_cyclegan_task
from gan_platform.trainer import Trainer

log = logging.getLogger(__name__)


def make_accelerator(cfg: DictConfig) -> Accelerator:
    """One CPU, one GPU or many, as `accelerate launch` (or nothing) says."""
    # D's buffers (BatchNorm) must not be broadcast from rank 0 at every forward: G and D are
    # separate DDP modules, called several times per step.
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
    # torch names the same switch forward_sync_buffers now, which Accelerate cannot pass yet; the
    # buffers are averaged over the ranks before checkpoints and evaluations (distributed.py).
    warnings.filterwarnings("ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning)
    precision = str(cfg.trainer.precision)
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", precision) != precision:
        # One process, several runs (tests, benchmarks, an in-process sweep): Accelerate keeps its
        # state for the life of the process and refuses another precision; drop it (not the process group).
        AcceleratorState._reset_state()
    from gan_platform.tracking import accelerate_log_with

    check_gpus_for_processes()
    acc = Accelerator(mixed_precision=precision, kwargs_handlers=[ddp], log_with=accelerate_log_with(cfg.get("tracker")))
    if precision == "fp16" and acc.device.type == "cpu":
        # Accelerate quietly trains in float32 when asked for fp16 on a CPU (no autocast, no scaler).
        raise ConfigError("trainer.precision=fp16 needs a GPU (on the CPU Accelerate would quietly train in float32): "
                          "use trainer.precision=bf16 on the CPU, or fp16 on a GPU.")
    if acc.num_processes > 1 and cfg.trainer.batch_size < 1:
        raise ConfigError("trainer.batch_size must be at least 1 per process.")
    return acc


def shared_run_dir(acc: Accelerator, local_dir: str) -> Path:
    """The main process's run dir, the same on every rank (ranks resolve `${now:...}` themselves)."""
    obj = [str(local_dir)]
    if acc.num_processes > 1:
        broadcast_object_list(obj, from_process=0)
    return Path(obj[0])


def build_dataset(cfg: DictConfig, acc: Accelerator):
    dataset = instantiate(cfg.dataset)
    dataset.to(acc.device).shard(acc.process_index, acc.num_processes)
    return dataset


def data_scale(setting: Any, dataset: Any = None) -> float:
    """`model.data_scale` as a number: `auto` is the radius of a mixture's modes (ring8 1, grid25 4)
    and 1 for other data (images live in [-1, 1]) or when no dataset is at hand (the scale is a
    buffer of the networks, so loading trained weights restores it)."""
    if setting == "auto":
        means = getattr(dataset, "means", None)
        return float(means.abs().max()) if means is not None and float(means.abs().max()) > 0 else 1.0
    return float(setting)


def build_gan_networks(cfg: DictConfig, sample_shape: tuple[int, ...], num_classes: int = 0,
                       discriminator: bool = True, dataset: Any = None) -> tuple[torch.nn.Module, Optional[torch.nn.Module]]:
    """G (and D unless `discriminator` is false) of `cfg.model` for samples of `sample_shape`;
    `num_classes` > 0 makes them conditional. Also used by `gan_platform.sample` to rebuild G."""
    scaled = {"scale": data_scale(cfg.model.data_scale, dataset)} if "data_scale" in cfg.model else {}
    G = instantiate(cfg.model.generator, out_shape=tuple(sample_shape), z_dim=int(cfg.model.z_dim), num_classes=num_classes,
                    **scaled)
    D = None
    if discriminator:
        D = instantiate(cfg.model.discriminator, in_shape=tuple(sample_shape), num_classes=num_classes,
                        conditioning=cfg.model.get("conditioning", "concat"), **scaled)
    return G, D


def build_gan_task(cfg: DictConfig, dataset, acc: Accelerator):
    from gan_platform.tasks.gan import GANTask

    conditional = bool(cfg.task.conditional)
    if conditional and not dataset.labelled:
        raise ConfigError(f"A conditional GAN needs labelled data, and dataset '{dataset.name}' has no labels: "
                          "choose a labelled dataset (digits, ring8, grid25, an image folder with class subfolders) or set task.conditional=false.")
    num_classes = dataset.num_classes if conditional else 0
    if not conditional and float(cfg.task.mismatch_weight) > 0:
        log.warning("task.mismatch_weight=%g is ignored: this run is unconditional (task.conditional=false).",
                    float(cfg.task.mismatch_weight))
    if conditional and num_classes < 2:
        raise ConfigError(f"A conditional GAN needs at least 2 classes; dataset '{dataset.name}' has {num_classes}.")
    shape = dataset.sample_shape
    z_dim = int(cfg.model.z_dim)
    G, D = build_gan_networks(cfg, shape, num_classes, dataset=dataset)
    from gan_platform.optim import build_optimizer

    g_opt = build_optimizer(cfg.optimizer, G.parameters())
    d_opt = build_optimizer(cfg.optimizer, D.parameters())
    G, g_opt = acc.prepare(G, g_opt)
    D, d_opt = acc.prepare(D, d_opt)
    return GANTask(acc, G, D, g_opt, d_opt, loss=cfg.loss.name, z_dim=z_dim, num_classes=num_classes,
                   mismatch_weight=float(cfg.task.mismatch_weight) if conditional else 0.0,
                   gp_weight=float(cfg.loss.gradient_penalty), clip_value=float(cfg.loss.weight_clip),
                   sample_shape=shape, class_names=dataset.class_names if conditional else None)


TASK_BUILDERS: dict[str, Callable[..., Any]] = {"gan": build_gan_task}
TASK_BUILDERS["cyclegan"] = build_cyclegan_task


def build_task(cfg: DictConfig, dataset, acc: Accelerator):
    name = cfg.task.name
    if name not in TASK_BUILDERS:
        raise ConfigError(f"Unknown task '{name}': choose one of {', '.join(sorted(TASK_BUILDERS))}.")
    return TASK_BUILDERS[name](cfg, dataset, acc)


def build_evaluator(cfg: DictConfig, dataset, task, acc: Accelerator):
    """The task's own evaluator if it has one (CycleGAN), else the GAN evaluator."""
    from gan_platform.evaluation.build import build_gan_evaluator, resolve_best_metric

    if hasattr(task, "build_evaluator"):
        evaluator = task.build_evaluator(cfg, dataset, acc)
        resolve_best_metric(cfg.eval, getattr(evaluator, "default_best_metric", None))  # eval.best_metric: auto
        return evaluator

    return build_gan_evaluator(cfg, dataset, task, acc)


def build_tracker(cfg: DictConfig, acc: Accelerator):
    """W&B (offline by default) or nothing, as `cfg.tracker` says; see tracking.py."""
    from gan_platform.tracking import make_tracker

    return make_tracker(cfg.get("tracker"), acc)


def build_callbacks(cfg: DictConfig) -> list[Callable[..., Any]]:
    """Things that react to trainer events (eval, samples, end) on the main process."""
    if not cfg.get("report", True):
        return []
    from gan_platform.report import ReportWriter

    return [ReportWriter()]


def run(cfg: DictConfig, run_dir: str | os.PathLike) -> dict[str, Any]:
    """Train one run described by `cfg`, writing into `run_dir`; returns the summary."""
    validate(cfg)
    acc = make_accelerator(cfg)
    run_path = shared_run_dir(acc, str(run_dir))
    if acc.is_main_process:
        RunDir(run_path).lock()  # one live process per run dir (held until the run ends or the process dies)
    set_seed(int(cfg.seed), device_specific=True)
    dataset = build_dataset(cfg, acc)
    task = build_task(cfg, dataset, acc)
    evaluator = build_evaluator(cfg, dataset, task, acc)
    tracker = build_tracker(cfg, acc) if acc.is_main_process else None
    from gan_platform.tracking import Tracker

    tracker = tracker or Tracker()
    config = OmegaConf.to_container(cfg, resolve=True)
    trainer = Trainer(accelerator=acc, task=task, dataset=dataset, run_dir=RunDir(run_path), cfg=cfg.trainer,
                      eval_cfg=cfg.eval, evaluator=evaluator, tracker=tracker, seed=int(cfg.seed), config=config)
    trainer.callbacks.extend(build_callbacks(cfg))
    trainer.tracker_resume_state = {}
    trainer.resume()
    tracker.start(config, str(run_path), trainer.tracker_resume_state)
    try:
        summary = trainer.fit()
    finally:
        tracker.finish(trainer.summary())
    acc.end_training()
    if acc.is_main_process:
        RunDir(run_path).unlock()
    return summary
