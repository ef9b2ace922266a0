"""Trackers: where metrics and pictures go besides the run dir's own files.

The trainer talks to a tracker through `start(config, run_dir, resume_state)`, `log(metrics,
step)`, `log_images(pictures, step, captions)` and `finish(summary)`; `state()` is saved in
checkpoints and handed back as `resume_state`, so a resumed run continues the same tracker run.
Tracking must never break training: `SafeTracker` turns any tracker failure into one warning and
carries on with the local files.

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

Offline (the default) writes `<run_dir>/wandb/offline-run-*/`; a resumed run adds another
folder with the same run id, and `wandb sync <run_dir>/wandb/offline-run-*` uploads them in order
into one W&B run.
"""

from __future__ import annotations

import logging
import os
import secrets
import string
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from gan_platform.errors import ConfigError

log = logging.getLogger(__name__)

TRACKERS = ("none", "wandb")
WANDB_MODES = ("offline", "online", "disabled")
# Metrics whose best value W&B keeps in the run summary (beside the last one).
BEST_OF = {"eval/fid": "min", "eval/kid": "min", "collapse/modes": "max",
           "eval/fid_a2b": "min", "eval/fid_b2a": "min"}
FINISHED_STATUSES = ("finished", "early_stopped", "stopped_by_sweep")  # W&B exit code 0


class Tracker:
    """No tracker (``tracker=none``): the run dir's files are the record."""

    name = "none"

    def start(self, config: dict[str, Any], run_dir: str, resume_state: Optional[dict] = None) -> None:
        pass

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_images(self, pictures: dict[str, np.ndarray], step: int, captions: Optional[dict[str, str]] = None) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {}

    def finish(self, summary: dict[str, Any]) -> None:
        pass

    def abandon(self) -> None:
        """Stop using this tracker after a failure, releasing what it holds; never raises."""


class SafeTracker(Tracker):
    """Wraps a tracker so that its failures become a warning and tracking stops; training goes on."""

    def __init__(self, inner: Tracker):
        self.inner = inner
        self.name = inner.name
        self.failed: Optional[str] = None

    def _call(self, what: str, *args, **kwargs):
        if self.failed is not None:
            return None
        try:
            return getattr(self.inner, what)(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - tracking must never crash training
            self.failed = f"{type(e).__name__}: {e}"
            log.warning("Tracker '%s' failed in %s (%s); training goes on with the run dir's own files.",
                        self.name, what, self.failed)
            try:
                self.inner.abandon()
            except Exception:  # noqa: BLE001
                pass
            return None

    def start(self, config, run_dir, resume_state=None):
        self._call("start", config, run_dir, resume_state)

    def log(self, metrics, step):
        self._call("log", metrics, step)

    def log_images(self, pictures, step, captions=None):
        self._call("log_images", pictures, step, captions)

    def state(self):
        return self._call("state") or {}

    def finish(self, summary):
        self._call("finish", summary)


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
    """{"final": {"eval/fid": 3}} -> {"final/eval/fid": 3}: nested summary values as W&B summary keys."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "/"))
        elif value is not None:
            out[name] = value
    return out


class WandbTracker(Tracker):
    """A W&B run through Accelerate's trackers; offline by default, resumable by run id."""

    name = "wandb"

    def __init__(self, accelerator: Any, *, project: str, entity: Optional[str] = None, group: Optional[str] = None,
                 tags: Sequence[str] = (), run_name: Optional[str] = None, mode: str = "offline",
                 init_timeout: float = 30.0, notes: Optional[str] = None):
        self.acc = accelerator
        self.project, self.entity, self.group, self.tags = project, entity, group, list(tags)
        self.run_name, self.mode, self.init_timeout, self.notes = run_name, mode, init_timeout, notes
        self.run_id: Optional[str] = None
        self.run: Any = None

    def start(self, config: dict[str, Any], run_dir: str, resume_state: Optional[dict] = None) -> None:
        import wandb

        resume_state = resume_state or {}
        # a W&B sweep agent names the run it started in WANDB_RUN_ID; a checkpoint names the run it continues
        self.run_id = resume_state.get("run_id") or os.environ.get("WANDB_RUN_ID") or new_run_id()
        run_name = self.run_name or f"{config.get('name', 'run')}/{Path(run_dir).name}"
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        init = dict(dir=str(run_dir), mode=self.mode, id=self.run_id, resume="allow", entity=self.entity,
                    group=self.group, tags=self.tags, name=run_name, notes=self.notes,
                    settings=wandb.Settings(console="off", init_timeout=float(self.init_timeout)))
        try:
            self.acc.init_trackers(self.project, config=config, init_kwargs={"wandb": init})
            self.run = self.acc.get_tracker("wandb", unwrap=True)
        except BaseException:
            self._detach()
            raise
        for key, mode in BEST_OF.items():
            self.run.define_metric(key, summary=f"{mode},last")
        if resume_state.get("run_id"):
            log.info("W&B run %s continues (mode %s).", self.run_id, self.mode)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.acc.log(dict(metrics), step=int(step))

    def log_images(self, pictures: dict[str, np.ndarray], step: int, captions: Optional[dict[str, str]] = None) -> None:
        import wandb

        captions = captions or {}
        images = {key: wandb.Image(as_uint8(p), caption=captions.get(key)) for key, p in pictures.items()}
        self.acc.log(images, step=int(step))

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
            self.run.finish(exit_code=0 if summary.get("status") in FINISHED_STATUSES else 1)
        finally:
            self._detach()
            self.run = None

    def abandon(self) -> None:
        """After a failure: off the Accelerator, so `end_training` never calls into a broken run."""
        self._detach()
        self.run = None

    def _detach(self) -> None:
        """Take this tracker off the Accelerator so `end_training` never touches a finished or broken run."""
        self.acc.trackers = [t for t in getattr(self.acc, "trackers", []) if getattr(t, "name", None) != "wandb"]


def check_tracker_config(tracker_cfg: Any) -> None:
    """A wrong tracker name or W&B mode is one sentence before any work starts."""
    name = tracker_cfg.get("name", "none")
    if name not in TRACKERS:
        raise ConfigError(f"tracker '{name}' is unknown: choose tracker=wandb or tracker=none.")
    if name == "wandb" and tracker_cfg.get("mode", "offline") not in WANDB_MODES:
        raise ConfigError(f"tracker.mode must be one of {', '.join(WANDB_MODES)}, got '{tracker_cfg.get('mode')}'.")


def accelerate_log_with(tracker_cfg: Any) -> Optional[str]:
    """What `Accelerator(log_with=...)` needs for this tracker config."""
    return "wandb" if tracker_cfg is not None and tracker_cfg.get("name") == "wandb" else None


def make_tracker(tracker_cfg: Any, accelerator: Any) -> Tracker:
    """The tracker `tracker_cfg` describes, wrapped so its failures never stop training."""
    check_tracker_config(tracker_cfg)
    if tracker_cfg.get("name") != "wandb":
        return Tracker()
    return SafeTracker(WandbTracker(
        accelerator, project=str(tracker_cfg.get("project") or "gan_platform"), entity=tracker_cfg.get("entity"),
        group=tracker_cfg.get("group"), tags=list(tracker_cfg.get("tags") or []), run_name=tracker_cfg.get("run_name"),
        mode=str(tracker_cfg.get("mode", "offline")), init_timeout=float(tracker_cfg.get("init_timeout", 30)),
        notes=tracker_cfg.get("notes")))
