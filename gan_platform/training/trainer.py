"""The training loop: schedule, cadences, checkpoint/resume, early stop, divergence, logging.

One iteration = `d_steps` critic steps (a fresh real batch each) then `g_steps` generator steps,
each followed by the update of G's moving average when `trainer.ema` is on (ema.py);
`step` counts iterations (generator iterations in the WGAN paper's sense). Every `log_every`
iterations the losses (kept on the device in between: no per-step host syncs) are averaged over
the window and over all processes, checked for NaN/inf, and logged; every `sample_every` a sample
grid is written; every `eval.every` the evaluator runs; every `checkpoint_every` the full state is
saved. Ctrl-C or SIGTERM stop after the current iteration (several processes: at the same
iteration, agreed within about a second, see stopping.py), save a checkpoint and end the run cleanly.

Every kill leaves a run that `trainer.resume=auto` continues as if it had never stopped: a
checkpoint holds the pending loss window, the last logged losses and how many records metrics.jsonl
had when it was written; on resume metrics.jsonl is cut back to exactly those records, so whatever
was logged after the checkpoint (training rows, evaluation rows, the final evaluation's) is logged
again once, with the same values on the CPU. The end of a run is resumable too: the final
checkpoint is written before the final samples and evaluation, which a resume from it repeats.
The tracker is handed the kept records again on resume; it keeps those at steps it lacks (a
record logged just before a kill may not have reached W&B's files) and drops the rest.

How a run ends is always written to summary.json: `finished`, `early_stopped`, `diverged` (a
NaN/inf in the logged losses or in the parameters and buffers, checked at every log step and
before every checkpoint, so that no checkpoint holds a non-finite state), `interrupted`,
`stopped_by_sweep` (SIGTERM in a sweep trial, see stopping.py), `preempted` (a cluster's
SIGUSR1/SIGUSR2; the job is then requeued, preemption.py; the three with a `reason`), or
`failed` with the error. `checkpoint_step` there says which step checkpoints/last holds.
On resume the optimizer hyperparameters of the config (lr, betas, ...) win over the checkpoint's,
so that "lower the learning rate and resume" does what it says.

The loop reads top to bottom in `fit`: `_begin`, then for each iteration `iteration` and
`_cadences` (log, stop request, samples, evaluation, checkpoint), then `_finish`; every way a run
ends (finished, a requested stop, an early stop, divergence, a second Ctrl-C, an error) goes through
`_ended`, which records the status (runs/status.py) and keeps what can be kept. The parts the loop
uses live beside it: checkpointing (what a checkpoint holds, resume), state (the training half of
it), loss_window, divergence, stopping (Ctrl-C/SIGTERM), early_stopping, sample_grid, settings, ema
(G's moving average) and health (the task measures its health signals on the last iteration of each
log window; known failures become summary.json's `warnings`).
"""

from __future__ import annotations

import errno
import logging
import traceback
from typing import Any, Callable, Optional

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from gan_platform.errors import DivergedError, UserError
from gan_platform.runs.checkpoint import pause_for_test
from gan_platform.runs.rundir import RunDir
from gan_platform.runs.status import Status, reason
from gan_platform.tasks.base import Task
from gan_platform.tracking.base import Tracker
from gan_platform.training.checkpointing import Checkpointing
from gan_platform.training.distributed import average_buffers, replica_fingerprints
from gan_platform.training.divergence import check_finite
from gan_platform.training.early_stopping import EarlyStopping
from gan_platform.training.ema import attach_ema
from gan_platform.training.health import HealthLog, evaluation_failures, training_failures
from gan_platform.training.loss_window import LossWindow
from gan_platform.training.sample_grid import write_sample_grid
from gan_platform.training.schedules import Schedules
from gan_platform.training.settings import Settings
from gan_platform.training.state import configured_hyperparameters, make_schedulers, side_rng
from gan_platform.training.stopping import StopRequest

log = logging.getLogger(__name__)

DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES)
SHOWN_LOSSES = ("train/d_loss", "train/g_loss", "train/wasserstein")  # on the progress bar


class _Stop(Exception):
    """A requested end before `trainer.steps`: a signal (Ctrl-C, SIGTERM) or an early stop."""

    def __init__(self, status: Status):
        self.status = status


class Trainer(Checkpointing):
    """Drives a task's d_step/g_step on batches from a dataset and writes the run dir."""

    def __init__(self, *, accelerator: Accelerator, task: Task, dataset: Any, run_dir: RunDir, cfg: Any,
                 eval_cfg: Any, evaluator: Any, tracker: Tracker, seed: int, config: dict[str, Any],
                 callbacks: Optional[list[Callable[[str, "Trainer"], Any]]] = None):
        self.acc, self.task, self.dataset, self.run_dir = accelerator, task, dataset, run_dir
        self.cfg, self.eval_cfg, self.evaluator, self.tracker = Settings(cfg), Settings(eval_cfg), evaluator, tracker
        self.config, self.seed = config, seed
        self.main = accelerator.is_main_process
        self.step = 0
        self.data_generator = torch.Generator(device=dataset.device).manual_seed(seed * 1000 + accelerator.process_index)
        self.fixed = task.grid_inputs(cfg.grid_size, torch.Generator().manual_seed(seed + 12345))
        self.early_stopping = EarlyStopping(self.eval_cfg)
        self.last_eval: dict[str, float] = {}
        self.last_train: dict[str, float] = {}
        self.records = 0  # records in metrics.jsonl (main process); a checkpoint keeps the count
        self.kept_records: list[dict[str, Any]] = []  # a resumed run's records before its checkpoint
        self.status, self.error = Status.RUNNING, None
        self.checkpoint_step: Optional[int] = None
        self.init_from: Optional[dict[str, Any]] = None  # trainer.init_from: the checkpoint the networks started as
        # trainer.ema: G's average joins task.modules (checkpoints, resume) and samples (ema.py)
        self.ema = attach_ema(task, accelerator, self.cfg.get("ema"), self.cfg.batch_size * accelerator.num_processes)
        self.schedules = Schedules(config.get("schedules"))  # values moved with the images seen (schedules.py)
        # before a checkpoint overwrites them; the settings a schedule sets are the schedule's
        self.configured = configured_hyperparameters(task.optimizers, self.schedules.owned_settings())
        self.schedulers = make_schedulers(task.optimizers, self.cfg.lr_decay, self.cfg.lr_decay_start, self.cfg.steps)
        self.losses = LossWindow(accelerator)
        self.health = HealthLog()  # known failures seen in the logs (health.py): summary.json's `warnings`
        self.stop_request = StopRequest(accelerator)
        self.replicas: Optional[dict[str, Any]] = None  # several processes: were they in step at the end?
        self._pbar = None
        # Called as fn(event, trainer) on the main process after "eval", "samples" and at "end"
        # (the dashboard uses it); a failing callback is logged, never fatal.
        self.callbacks = list(callbacks or [])

    @property
    def best(self) -> dict[str, Any]:
        """The best evaluation so far (early_stopping.py); summary.json's `best`."""
        return self.early_stopping.best

    # -- the loop --------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Train to `trainer.steps`; returns the final summary (also written to summary.json)."""
        self._begin()
        try:
            while self.step < self.cfg.steps:
                self.iteration()
                self.step += 1
                self._pbar.update(1)
                self._cadences()
            self._finish()
        except BaseException as e:  # noqa: BLE001 - every way a run ends goes through _ended
            self._ended(e)
        finally:
            self._pbar.close()
            self.stop_request.restore()
            self._write_summary(best_effort=True)
            self._notify("end")
        return self.summary()

    def _begin(self) -> None:
        """Signals routed to the stop request, summary.json says `running`, the progress bar, the tracker
        handed a resumed run's kept records (it keeps the steps it does not hold yet), the first grid."""
        self.stop_request.install()
        self._write_summary()
        self._pbar = tqdm(total=self.cfg.steps, initial=self.step, disable=not (self.main and self.cfg.progress),
                          desc=str(self.config.get("name", "train")), dynamic_ncols=True, mininterval=1.0)
        self.losses.restart_clock()
        self.stop_request.start(self.step)
        for record in self.kept_records:
            self.tracker.log({k: v for k, v in record.items() if k != "step" and isinstance(v, (int, float))},
                             int(record["step"]))
        self.kept_records = []
        if self.step == 0 and self.cfg.sample_every > 0:
            self.write_samples()

    def iteration(self) -> None:
        """One iteration: d_steps critic steps, then g_steps generator steps."""
        bs = self.cfg.batch_size
        if self.schedules:
            self.schedules.apply(self.images_seen, self)
        self.task.measure_health = self._logs_after(self.step + 1)  # health signals: the window's last iteration
        for _ in range(self.cfg.d_steps):
            x, y = self.dataset.sample(bs, self.data_generator)
            self.losses.add(self.task.d_step(x, y))
        for j in range(self.cfg.g_steps):
            x, y = self.dataset.sample(bs, self.data_generator)
            self.losses.add(self.task.g_step(x, y))
            if self.ema is not None:
                self.ema.update(self.step * self.cfg.g_steps + j)
        for s in self.schedulers.values():
            s.step()
        self.losses.iterations += 1

    def _cadences(self) -> None:
        """After an iteration: the log step, a requested stop, then (before the last step, which
        `_finish` ends) samples, evaluation and a checkpoint at their cadences."""
        log_step = self._logs_after(self.step)
        if log_step:
            self._log_window()
        if self.stop_request.should_stop(self.step, log_step):  # a CPU flag; several processes: ~1/s
            raise _Stop(self.stop_request.status)
        if self.step >= self.cfg.steps:
            return
        if self._every(self.cfg.sample_every):
            self.write_samples()
        if self._every(self.eval_cfg.every):
            self.evaluate()
        if self._every(self.cfg.checkpoint_every):
            self._check_finite()
            self.save("last")
            self._write_summary()

    def _finish(self) -> None:
        """The last step: a checkpoint first (so a kill in what follows resumes from it), then the
        final samples and evaluation."""
        self._check_finite()
        self.save("last")
        self.check_replicas()
        if self.cfg.sample_every > 0:
            self.write_samples()
        self.evaluate()
        self.status = Status.FINISHED

    def _ended(self, error: BaseException) -> None:
        """How the run ended, from what ended it: summary.json's status and error; a requested stop
        keeps the state reached (if it is finite). Errors the caller must see are raised again: the
        user's own (one sentence), a full disk (as the user's), and bugs (with their traceback logged)."""
        if isinstance(error, _Stop):
            self.status = error.status
            try:
                self._check_finite()
                self.save("last")
            except KeyboardInterrupt:
                self.error = "stopped by a second Ctrl-C while saving; the last complete checkpoint is kept"
            except BaseException as e:  # noqa: BLE001 - diverged (recorded) or failed (raised), as in training
                self._ended(e)
            self.check_replicas()
        elif isinstance(error, DivergedError):
            self.status, self.error = Status.DIVERGED, str(error)
            if self.main:
                log.error("%s", error)
        elif isinstance(error, KeyboardInterrupt):
            self.status, self.error = Status.INTERRUPTED, "stopped by a second Ctrl-C; the last checkpoint is kept"
        else:
            self._failed(error)

    def _failed(self, error: BaseException) -> None:
        self.status = Status.FAILED
        if isinstance(error, UserError):
            self.error = str(error)
            raise error
        self.error = f"{type(error).__name__}: {error}"
        if isinstance(error, OSError) and error.errno in DISK_ERRORS:  # disk full, quota, file size, read-only: the user's to fix
            self.error = (f"Could not write '{error.filename or self.run_dir.root}' ({error.strerror}); the last checkpoint "
                          "is kept: free disk space (or fix permissions) and continue with trainer.resume=auto.")
            raise UserError(self.error) from error
        if self.main:
            log.error("Run failed:\n%s", "".join(traceback.format_exception(error)))
        raise error

    @property
    def images_seen(self) -> int:
        """Images seen before the next iteration: iterations x the batch of every process (cur_nimg)."""
        return self.step * self.cfg.batch_size * self.acc.num_processes

    # -- the cadences' work ----------------------------------------------------------------
    def _logs_after(self, step: int) -> bool:
        """Is `step` a log step?"""
        return step % self.cfg.log_every == 0 or step == self.cfg.steps

    def _every(self, n: int) -> bool:
        return n > 0 and self.step % n == 0

    def _log_window(self) -> None:
        """The losses averaged over the window (and the processes), checked, logged and shown; then the
        window's parameters checked for NaN/inf."""
        self.last_train = {**self.losses.flush(self.step, self.checkpoint_step), **self.schedules.values()}
        self._warn(training_failures(self.last_train))
        if self.main:  # images seen: every process's whole batch (micro_batch rounds included), stylegan2-ada's kimg
            seen = {"images_seen": self.images_seen}
            self.append_metrics({"step": self.step, **seen, **self.last_train})
            self.tracker.log({**seen, **self.last_train}, self.step)
            self._pbar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in self.last_train.items() if k in SHOWN_LOSSES})
        self._check_finite()

    def append_metrics(self, record: dict[str, Any]) -> None:
        """One record into metrics.jsonl (main process), counted for the next checkpoint."""
        self.run_dir.append_metrics(record)
        self.records += 1

    def _check_finite(self) -> None:
        """The pending losses, parameters and float buffers are finite on all processes (divergence.py)."""
        check_finite(self.acc, self.task.modules, self.losses.sums, self.step, self.checkpoint_step)

    def _warn(self, found: list[tuple[str, str]]) -> None:
        """Record known failures (health.py); log each kind the first time it is seen."""
        for message in self.health.record(found, self.step):
            if self.main:
                log.warning("Step %d: %s", self.step, message)

    def write_samples(self) -> None:
        """The sample grid of the fixed inputs at this step (sample_grid.py), logged to the tracker."""
        if not self.main:
            return
        with side_rng(self.seed, self.step):
            samples = self.task.sample_grid(self.fixed)
        picture = write_sample_grid(self.run_dir, self.step, samples, self.fixed, self.task, self.dataset)
        self.tracker.log_images({"samples": picture}, self.step, captions={"samples": f"step {self.step}"})
        self._notify("samples")

    def evaluate(self) -> None:
        """Run the evaluator, log its metrics, keep checkpoints/best and stop early (early_stopping.py)."""
        average_buffers(self.acc, self.task.modules.values())  # every rank samples from the same G
        with side_rng(self.seed, self.step):
            metrics = self.evaluator.evaluate(self.task, self.step)
        if not metrics:
            return
        self._warn(evaluation_failures(self.last_eval, metrics))
        self.last_eval = metrics
        if self.main:
            self.append_metrics({"step": self.step, **metrics})
            self.tracker.log(metrics, self.step)
            self._notify("eval")
        pause_for_test("evaluated", self.step)
        improved = self.early_stopping.update(metrics, self.step)
        if improved:
            self.save("best")
        elif improved is False and self.early_stopping.patience_exhausted:
            key, best = self.eval_cfg.best_metric, self.best
            log.info("Early stop at step %d: %s has not improved for %d evaluations (best %.4g at step %d).",
                     self.step, key, self.early_stopping.bad_evals, best[key], best["step"])
            raise _Stop(Status.EARLY_STOPPED)

    def _notify(self, event: str) -> None:
        if not self.main:
            return
        for fn in self.callbacks:
            try:
                fn(event, self)
            except Exception:  # noqa: BLE001 - a dashboard must never stop training
                log.warning("Callback %r failed on %s:\n%s", fn, event, traceback.format_exc())

    def summary(self) -> dict[str, Any]:
        """What summary.json holds: how the run ended, its final and best metrics."""
        return {
            "status": self.status,
            "step": self.step,
            "steps": self.cfg.steps,
            "error": self.error,
            "checkpoint_step": self.checkpoint_step,
            "experiment": self.config.get("name"),
            "final": {**self.last_train, **self.last_eval},
            "best": self.best,
            "protocol": self.evaluator.protocol(),
            "num_processes": self.acc.num_processes,
            "warnings": self.health.warnings,
            **({"reason": reason(self.status)} if reason(self.status) and not self.error else {}),
            **({"replicas": self.replicas} if self.replicas else {}),
            **({"init_from": self.init_from} if self.init_from else {}),
        }

    def check_replicas(self) -> None:
        """Several processes: record every rank's parameter fingerprint; they must all be equal."""
        if self.acc.num_processes < 2:
            return
        prints = replica_fingerprints(self.acc, self.task.modules)
        self.replicas = {"sha256": prints, "in_sync": len(set(prints)) == 1}
        if self.main and not self.replicas["in_sync"]:
            log.error("The %d processes ended with different parameters: the run is not data-parallel as it should be.",
                      len(prints))

    def _write_summary(self, best_effort: bool = False) -> None:
        if not self.main:
            return
        try:
            self.run_dir.write_summary(self.summary())
        except OSError as e:
            if not best_effort:
                raise
            log.error("Could not write %s: %s", self.run_dir.summary_path, e)
