"""Build a run from its config: accelerator, data, task, evaluator, tracker; hand them to the trainer.

Every pluggable part is built from its config node by `_target_` (Hydra's instantiate): dataset,
model and optimizer inside the task's builder, the task (conf/task/*.yaml names its module's
builder, which owns the task's networks and checks), the evaluator (the task config's
`evaluator`), the tracker (conf/tracker/*.yaml). A wrong choice is a composition error that lists
the choices (config/compose_errors.py).

Data flows one way: config -> objects built here -> trainer drives task steps -> evaluator
measures -> tracker and run dir record.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Callable

from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list, set_seed
from omegaconf import DictConfig, OmegaConf

from gan_platform.config import validate
from gan_platform.errors import ConfigError, instantiate
from gan_platform.runs.rundir import RunDir
from gan_platform.runs.status import Status
from gan_platform.training.distributed import check_gpus_for_processes
from gan_platform.training.preemption import requeue
from gan_platform.training.trainer import Trainer

log = logging.getLogger(__name__)


def make_accelerator(cfg: DictConfig) -> Accelerator:
    """One CPU, one GPU or many, as `accelerate launch`, the cluster's tasks (training/cluster.py) or nothing says."""
    from gan_platform.training.cluster import export_task_ranks

    export_task_ranks()  # a submitit job's tasks start here, not through the command line
    # D's buffers (BatchNorm) must not be broadcast from rank 0 at every forward: G and D are
    # separate DDP modules, called several times per step.
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
    # torch names the same switch forward_sync_buffers now, which Accelerate cannot pass yet; the
    # buffers are averaged over the ranks before checkpoints and evaluations (training/distributed.py).
    warnings.filterwarnings("ignore", message="`broadcast_buffers` is deprecated", category=FutureWarning)
    precision = str(cfg.trainer.precision)
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", precision) != precision:
        # One process, several runs (tests, benchmarks, an in-process sweep): Accelerate keeps its
        # state for the life of the process and refuses another precision; drop it (not the process group).
        AcceleratorState._reset_state()
    from gan_platform.tracking.wandb import accelerate_log_with

    check_gpus_for_processes()
    acc = Accelerator(mixed_precision=precision, kwargs_handlers=[ddp], log_with=accelerate_log_with(cfg.get("tracker")))
    if precision == "fp16" and acc.device.type == "cpu":
        # Accelerate quietly trains in float32 when asked for fp16 on a CPU (no autocast, no scaler).
        raise ConfigError("trainer.precision=fp16 needs a GPU (on the CPU Accelerate would quietly train in float32): "
                          "use trainer.precision=bf16 on the CPU, or fp16 on a GPU.")
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


def build(node: DictConfig, *args: Any) -> Any:
    """The part `node` describes, built by its `_target_` with the run's objects `args`: a task's
    builder gets (cfg, dataset, accelerator) and reads its own keys from `cfg.task`; an evaluator's
    gets (cfg, dataset, task, accelerator) and reads `cfg.eval`."""
    return instantiate({"_target_": node._target_, "_partial_": True})(*args)


def build_task(cfg: DictConfig, dataset, acc: Accelerator):
    """What one training step means (conf/task/*.yaml: `_target_` names the task module's builder)."""
    return build(cfg.task, cfg, dataset, acc)


def build_evaluator(cfg: DictConfig, dataset, task, acc: Accelerator):
    """The evaluator the task is measured with (the task config's `evaluator._target_`), or with
    `eval.enabled=false` none: no real statistics are made and the evaluation modules (and their
    memory) stay unloaded, as in a hand-written loop."""
    if not cfg.eval.get("enabled", True):
        from gan_platform.evaluation.evaluator import Evaluator

        return Evaluator()
    return build(cfg.task.evaluator, cfg, dataset, task, acc)


def build_tracker(cfg: DictConfig, acc: Accelerator):
    """W&B (offline by default) or nothing, as `cfg.tracker` says (conf/tracker/*.yaml), wrapped so
    that a tracker's failure never stops training (tracking/base.py)."""
    from gan_platform.tracking import SafeTracker, Tracker

    node = cfg.get("tracker")
    if node is None:
        return Tracker()
    arguments = {k: v for k, v in node.items() if k != "name"}  # `name` names the choice; the rest are arguments
    return SafeTracker(instantiate(arguments, _partial_=True)(accelerator=acc))


def build_callbacks(cfg: DictConfig) -> list[Callable[..., Any]]:
    """Things that react to trainer events (eval, samples, end) on the main process."""
    if not cfg.get("report", True):
        return []
    from gan_platform.tracking.report import ReportWriter

    return [ReportWriter()]


def build_trainer(cfg: DictConfig, run_dir: str | os.PathLike, checked: bool = False) -> Trainer:
    """Every part of the run `cfg` describes, joined in a Trainer that has resumed where it should
    and whose tracker has started (`run` then fits it; benchmarks/profile_step.py drives it itself).
    `checked`: the config already passed `validate` (the command line's pre-flight does, before Hydra
    writes the run dir); else it is checked here, before any work."""
    if not checked:
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
                      eval_cfg=cfg.eval, evaluator=evaluator, tracker=tracker, seed=int(cfg.seed), config=config,
                      callbacks=build_callbacks(cfg))
    resumed = trainer.resume()
    if resumed is None and cfg.trainer.get("init_from"):  # a fresh run may start from a trained one (fine-tuning)
        trainer.initialise_from(str(cfg.trainer.init_from))
    tracker.start(config, str(run_path), resumed.tracker_state if resumed else {})
    return trainer


def run(cfg: DictConfig, run_dir: str | os.PathLike, checked: bool = False) -> dict[str, Any]:
    """Train one run described by `cfg`, writing into `run_dir`; returns the summary (`checked`: see build_trainer)."""
    trainer = build_trainer(cfg, run_dir, checked)
    try:
        summary = trainer.fit()
    finally:
        trainer.tracker.finish(trainer.summary())
    summary["tracker"] = trainer.tracker.where()  # for the closing line: where the record went
    trainer.acc.end_training()
    if trainer.main:
        trainer.run_dir.unlock()
    if summary["status"] == Status.PREEMPTED:  # the last thing: submitit's requeue exits the process
        stop = trainer.stop_request
        requeue(stop.previous, stop.signum, trainer.main)
    return summary
