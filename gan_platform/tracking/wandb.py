"""Weights & Biases as a tracker (base.py has the interface): `conf/tracker/wandb.yaml` builds
`WandbTracker` by its `_target_`.

W&B goes through Accelerate's tracker API: `run.make_accelerator` creates the Accelerator with
`log_with="wandb"` (see `accelerate_log_with`), and `WandbTracker.start` calls
`accelerator.init_trackers` once the run id is known. Deferring `init_trackers` to `start` (rather
than initialising at Accelerator creation) is what makes resume clean: the trainer loads the
checkpoint first, the checkpoint holds the W&B run id, and `wandb.init(id=..., resume="allow")`
then continues that run instead of opening a new one. Metrics and images go through
`accelerator.log`, at `step` = the trainer's step, so the part of a run after a resume continues
the same step axis. The run is finished here, not by `accelerator.end_training`, because only here
is the outcome known (`exit_code`, the final summary); the tracker is then detached from the
Accelerator so `end_training` does not finish it twice, and a tracker whose start failed is
detached too (as is one that fails later), so a W&B failure never breaks `end_training`.

Laid out for GAN work: evaluation metrics (`eval/*`, `collapse/*`) get their own x axis,
`eval/step` (`define_metric` with a step metric), so a panel of FIDs plots one point per evaluation
rather than a sparse line over training steps. Beside each sample picture, the raw samples the
trainer wrote to the run dir (`samples/step_NNNNNN.pt`, runs/rundir.py) are logged in the form W&B
shows best: a conditional grid's class rows as a `wandb.Table` of images (`samples_by_class`: step,
class, that class's row), and 2-D samples as an interactive `wandb.plot.scatter` (`samples_scatter`).
tracking/workspace.py arranges these in a W&B workspace.

Offline (the default) writes `<run_dir>/wandb/offline-run-*/`; a resumed run adds another
folder with the same run id, and `wandb sync <run_dir>/wandb` (one command for all the parts)
uploads them in the order they started into one W&B run: the run's closing console line gives that
command (`where`; wandb_files.py), and W&B's own console lines, which name other commands, are off.
`tracker.mode=online` that W&B refuses (no login, no server) records the run offline instead, and
the closing line says so and how to upload it. A resumed part logs only the steps after the last one the earlier parts
hold (offline: read from their files; online: W&B's own resumed step), so every step is in the run once.
"""

from __future__ import annotations

import logging
import os
import secrets
import string
from enum import Enum
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from gan_platform.errors import ConfigError
from gan_platform.runs.metrics import best_mode
from gan_platform.runs.rundir import RunDir
from gan_platform.runs.status import succeeded
from gan_platform.tracking.base import Tracker
from gan_platform.tracking.pictures import image_grid, upscale
from gan_platform.tracking.wandb_files import logged_through, settle_parts, sync_command

log = logging.getLogger(__name__)

WANDB_MODES = ("offline", "online", "disabled")
# Metrics whose best value W&B keeps in the run summary (beside the last one).
BEST_OF = ("eval/fid", "eval/kid", "collapse/modes", "eval/fid_a2b", "eval/fid_b2a")
EVAL_STEP = "eval/step"  # the x axis of evaluation metrics: the trainer's step at that evaluation
EVAL_PREFIXES = ("eval/", "collapse/")


def as_uint8(picture: np.ndarray) -> np.ndarray:
    """A picture as uint8 (H, W, 3): wandb 0.31 does not rescale floats, so floats in [0, 1] are scaled here."""
    picture = np.asarray(picture)
    if picture.dtype != np.uint8:
        picture = (np.clip(picture.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)
    if picture.ndim == 2:
        picture = np.repeat(picture[:, :, None], 3, axis=2)
    return picture


def new_run_id() -> str:
    """A fresh W&B run id: 8 lower-case letters and digits, as W&B makes them."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"final": {"eval/fid": 3}} -> {"final/eval/fid": 3}: nested summary values as W&B summary keys.
    Enum members (the run's `Status`) go as their values: W&B writes a str-enum by its name, so the
    dashboard would read "FINISHED" where summary.json says "finished"."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        elif value is not None:
            out[name] = value.value if isinstance(value, Enum) else value
    return out


class WandbTracker(Tracker):
    """A W&B run through Accelerate's trackers; offline by default, resumable by run id."""

    name = "wandb"

    def __init__(self, accelerator: Any, *, name: str = "wandb", project: str = "gan_platform", entity: Optional[str] = None, group: Optional[str] = None,
                 tags: Sequence[str] = (), run_name: Optional[str] = None, mode: str = "offline",
                 init_timeout: float = 30.0, notes: Optional[str] = None):
        self.acc = accelerator
        self.project, self.entity, self.group, self.tags = project, entity, group, list(tags)
        self.run_name, self.mode, self.init_timeout, self.notes = run_name, mode, init_timeout, notes
        self.run_id: Optional[str] = None
        self.run: Any = None
        self.run_dir: Optional[Path] = None
        self.wandb_dir: Optional[Path] = None
        self.logged_through: Optional[int] = None  # steps up to this one are in W&B already (a resumed run)
        self.fell_back: Optional[str] = None  # why an online run went offline
        self.url: Optional[str] = None

    def start(self, config: dict[str, Any], run_dir: str, resume_state: Optional[dict] = None) -> None:
        import wandb

        resume_state = resume_state or {}
        # a W&B sweep agent names the run it started in WANDB_RUN_ID; a checkpoint names the run it continues
        self.run_id = resume_state.get("run_id") or os.environ.get("WANDB_RUN_ID") or new_run_id()
        run_name = self.run_name or f"{config.get('name', 'run')}/{Path(run_dir).name}"
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self.wandb_dir = Path(run_dir) / "wandb"
        if resume_state.get("run_id") and self.mode == "offline":
            for line in settle_parts(self.wandb_dir, self.run_id):
                log.info("%s.", line)
            self.logged_through = logged_through(self.wandb_dir, self.run_id)
        init = dict(dir=str(run_dir), id=self.run_id, resume="allow", entity=self.entity, group=self.group,
                    tags=self.tags, name=run_name, notes=self.notes, settings=self._settings())
        try:
            self._init(config, init, self.mode)
        except Exception as e:  # noqa: BLE001 - online and refused (no login, no server): keep the run offline
            if self.mode != "online":
                raise
            self.fell_back = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            log.warning("W&B could not start online (%s); the run is recorded offline in %s instead.",
                        self.fell_back, self.wandb_dir)
            self.mode = "offline"
            import wandb

            # The refused online run can hold its id in W&B's service for a while ("run ID is in use"): a new
            # run takes a new id; a resumed one keeps the checkpoint's, with a fresh service.
            wandb.teardown()
            if not resume_state.get("run_id"):
                self.run_id = new_run_id()
            self._init(config, {**init, "id": self.run_id}, "offline")
        self.run_dir = Path(run_dir)
        if getattr(self.run, "resumed", False):  # online: the server's run goes on after its last step
            self.logged_through = max(self.logged_through or -1, int(self.run.starting_step) - 1)
        self.run.define_metric(EVAL_STEP)
        for prefix in EVAL_PREFIXES:
            self.run.define_metric(f"{prefix}*", step_metric=EVAL_STEP)
        for key in BEST_OF:  # a metric's own definition replaces the glob's, so it names the step metric too
            self.run.define_metric(key, step_metric=EVAL_STEP, summary=f"{best_mode(key)},last")
        if resume_state.get("run_id"):
            log.info("W&B run %s continues (mode %s).", self.run_id, self.mode)

    def _settings(self) -> Any:
        """W&B's own console lines off (its banner names `wandb online` and WANDB_MODE, its hint syncs one
        folder of a resumed run): the platform's closing line says where the run went and the one
        command that uploads it (`where`). WANDB_SILENT=false in the environment brings them back."""
        import wandb

        silent = {} if "WANDB_SILENT" in os.environ else {"silent": True}
        return wandb.Settings(console="off", init_timeout=float(self.init_timeout), **silent)

    def _init(self, config: dict[str, Any], init: dict[str, Any], mode: str) -> None:
        try:
            self.acc.init_trackers(self.project, config=config, init_kwargs={"wandb": {**init, "mode": mode}})
            self.run = self.acc.get_tracker("wandb", unwrap=True)
        except BaseException:
            self._detach()
            raise

    def where(self) -> Optional[str]:
        """Where the run went, for the closing line: its page online, or its offline folder and the one
        command that uploads every part of it."""
        if self.wandb_dir is None:
            return None
        if self.mode == "online":
            url = getattr(self.run, "url", None) or self.url
            return f"W&B: {url}" if url else "W&B: online"
        upload = sync_command(self.wandb_dir)
        if self.fell_back:
            return (f"W&B: tracker.mode=online failed ({self.fell_back}), so the run stayed offline in {self.wandb_dir}: "
                    f"log in (wandb login), then upload it with: {upload}")
        return f"W&B: offline in {self.wandb_dir}; upload it with: {upload}"

    def logged(self, step: int) -> bool:
        """Is `step` in the W&B run already (logged by an earlier part of a resumed run)?"""
        return self.logged_through is not None and step <= self.logged_through

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.logged(step):
            return
        metrics = dict(metrics)
        if any(k.startswith(EVAL_PREFIXES) for k in metrics):
            metrics[EVAL_STEP] = int(step)
        self.acc.log(metrics, step=int(step))

    def log_images(self, pictures: dict[str, np.ndarray], step: int, captions: Optional[dict[str, str]] = None) -> None:
        import wandb

        if self.logged(step):
            return
        captions = captions or {}
        images = {key: wandb.Image(as_uint8(p), caption=captions.get(key)) for key, p in pictures.items()}
        if "samples" in pictures:
            try:
                images.update(self.sample_views(step))
            except Exception as e:  # noqa: BLE001 - an extra view must not stop the pictures and metrics
                log.warning("W&B: no class table or scatter of the samples at step %d (%s: %s).", step, type(e).__name__, e)
        self.acc.log(images, step=int(step))

    def sample_views(self, step: int) -> dict[str, Any]:
        """The step's raw samples (the run dir's .pt) as W&B shows them best: class rows as a table of
        images, 2-D points as an interactive scatter; nothing for other samples or a missing file."""
        import torch
        import wandb

        path = RunDir(self.run_dir).sample_path(step, ".pt") if self.run_dir else None
        if path is None or not path.is_file():
            return {}
        raw = torch.load(path, map_location="cpu", weights_only=True)
        samples, labels = raw.get("samples"), raw.get("labels")
        if samples is None:
            return {}
        if samples.ndim == 2 and samples.shape[1] == 2:
            columns = ["x", "y"] + (["class"] if labels is not None else [])
            data = [[*map(float, xy), *([int(labels[i])] if labels is not None else [])] for i, xy in enumerate(samples)]
            table = wandb.Table(columns=columns, data=data)
            return {"samples_scatter": wandb.plot.scatter(table, "x", "y", title=f"samples at step {step}")}
        if samples.ndim == 4 and labels is not None:
            rows = [[int(step), int(c), wandb.Image(as_uint8(upscale(image_grid(samples[labels == c], rows=1), 64)))]
                    for c in sorted(set(labels.tolist()))]
            return {"samples_by_class": wandb.Table(columns=["step", "class", "samples"], data=rows)}
        return {}

    def state(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "project": self.project} if self.run_id else {}

    def finish(self, summary: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            values = flatten({k: v for k, v in summary.items() if k != "best"})
            best = summary.get("best") or {}
            values.update(flatten({k: v for k, v in best.items() if k != "metrics"}, "best/"))
            self.run.summary.update(values)
            self.url = getattr(self.run, "url", None) if self.mode == "online" else None
            self.run.finish(exit_code=0 if succeeded(summary.get("status")) else 1)
        finally:
            self._detach()
            self.run = None

    def abandon(self) -> None:
        """After a failure: off the Accelerator, so `end_training` never calls into a broken run, and
        the W&B run ended (best effort) so that it does not stay this process's active run: a later
        `wandb.init` in the same process (an in-process sweep, the next run of a notebook) would
        otherwise meet it."""
        self._detach()
        run, self.run = self.run, None
        if run is not None:
            try:
                run.finish(exit_code=1)
            except Exception:  # noqa: BLE001 - the run is already broken; nothing more to save
                pass

    def _detach(self) -> None:
        """Take this tracker off the Accelerator so `end_training` never touches a finished or broken run."""
        self.acc.trackers = [t for t in getattr(self.acc, "trackers", []) if getattr(t, "name", None) != "wandb"]


def check(cfg: Any) -> None:
    """The W&B tracker's own rule, run with the other config checks before any work: a known mode."""
    mode = cfg.tracker.get("mode", "offline")
    if mode not in WANDB_MODES:
        raise ConfigError(f"tracker.mode must be one of {', '.join(WANDB_MODES)}, got '{mode}'.")


def accelerate_log_with(tracker_cfg: Any) -> Optional[str]:
    """What `Accelerator(log_with=...)` needs for this tracker config."""
    return "wandb" if tracker_cfg is not None and tracker_cfg.get("name") == "wandb" else None
