"""The training loop: schedule, cadences, checkpoint/resume, early stop, divergence, logging.

One iteration = `d_steps` critic steps (a fresh real batch each) then `g_steps` generator steps;
`step` counts iterations (generator iterations in the WGAN paper's sense). Every `log_every`
iterations the losses (kept on the device in between: no per-step host syncs) are averaged over
the window and over all processes, checked for NaN/inf, and logged; every `sample_every` a sample
grid is written; every `eval.every` the evaluator runs; every `checkpoint_every` the full state is
saved. Ctrl-C or SIGTERM stop at the next log step (where all processes agree), save a
checkpoint and end the run cleanly.

How a run ends is always written to summary.json: `finished`, `early_stopped`, `diverged` (a
NaN/inf in the logged losses or in the parameters and buffers, checked at every log step and
before every checkpoint, so that no checkpoint holds a non-finite state), `interrupted`, or
`failed` with the error. `checkpoint_step` there says which step checkpoints/last holds.
On resume the optimizer hyperparameters of the config (lr, betas, ...) win over the checkpoint's,
so that "lower the learning rate and resume" does what it says.
"""

from __future__ import annotations

import errno
import logging
import random
import signal
import time
import traceback
from contextlib import contextmanager
from typing import Any, Optional

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from gan_platform.checkpoint import load_checkpoint, load_for_resume, save_checkpoint, settle_resumed
from gan_platform.distributed import average_buffers, replica_fingerprints
from gan_platform.errors import DivergedError, UserError
from gan_platform.rundir import RunDir
from gan_platform.tracking import Tracker
from gan_platform.visualize import image_grid, save_png, scatter_plot, upscale

log = logging.getLogger(__name__)

# Optimizer settings taken from the config on resume (the checkpoint keeps only the moments).
HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "momentum", "alpha", "dampening")
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES)


class _Stop(Exception):
    def __init__(self, status: str):
        self.status = status


def _rng_state(data_generator: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "data": data_generator.get_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], data_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    data_generator.set_state(state["data"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Settings(dict):
    """A config section as a plain dict with attribute access: the loop reads its settings every
    iteration, and an OmegaConf lookup costs about as much as a small layer's forward pass."""

    def __init__(self, section: Any):
        super().__init__(OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else section)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


class Trainer:
    """Drives a task's d_step/g_step on batches from a dataset and writes the run dir."""

    def __init__(self, *, accelerator: Accelerator, task: Any, dataset: Any, run_dir: RunDir, cfg: Any,
                 eval_cfg: Any, evaluator: Any, tracker: Tracker, seed: int, config: dict[str, Any]):
        self.acc, self.task, self.dataset, self.run_dir = accelerator, task, dataset, run_dir
        self.cfg, self.eval_cfg, self.evaluator, self.tracker = Settings(cfg), Settings(eval_cfg), evaluator, tracker
        self.config, self.seed = config, seed
        self.main = accelerator.is_main_process
        self.step = 0
        self.data_generator = torch.Generator(device=dataset.device).manual_seed(seed * 1000 + accelerator.process_index)
        grid_gen = torch.Generator().manual_seed(seed + 12345)
        self.fixed = task.grid_inputs(cfg.grid_size, grid_gen)
        self.best: dict[str, Any] = {}
        self.bad_evals = 0
        self.last_eval: dict[str, float] = {}
        self.last_train: dict[str, float] = {}
        self.status = "running"
        self.error: Optional[str] = None
        self.checkpoint_step: Optional[int] = None
        self.configured = {name: [{k: g[k] for k in HYPERPARAMETERS if k in g} for g in opt.param_groups]
                           for name, opt in task.optimizers.items()}
        self.schedulers = self._make_schedulers()
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}  # how many steps logged each key in this window
        self._count = 0
        self._stop_requested = False
        self._stop_time = 0.0
        self.replicas: Optional[dict[str, Any]] = None  # several processes: were they in step at the end?
        self._window_start = time.perf_counter()
        self._pbar = None
        # Called as fn(event, trainer) on the main process after "eval", "samples" and at "end"
        # (the dashboard uses it); a failing callback is logged, never fatal.
        self.callbacks: list[Any] = []

    # -- schedules -------------------------------------------------------------------------
    def _make_schedulers(self) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
        if self.cfg.lr_decay == "none":
            return {}
        start = int(self.cfg.lr_decay_start * self.cfg.steps)
        span = max(1, self.cfg.steps - start)

        def linear(step: int) -> float:  # 1 until `start`, then linearly to 0 at `steps`
            return 1.0 - max(0, step - start) / span

        # On the inner optimizer: tasks step it directly (optim.hot_optimizer), and a scheduler on
        # Accelerate's wrapper would not see those steps (and warn that it runs before them).
        return {name: torch.optim.lr_scheduler.LambdaLR(getattr(opt, "optimizer", opt), linear)
                for name, opt in self.task.optimizers.items()}

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        rng = _rng_state(self.data_generator)
        rngs = gather_object([rng]) if self.acc.num_processes > 1 else [rng]
        return {
            "step": self.step,
            "num_processes": self.acc.num_processes,
            "modules": {k: self.acc.unwrap_model(m).state_dict() for k, m in self.task.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.task.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.acc.scaler.state_dict() if self.acc.scaler is not None else None,
            "rng": rngs,
            "task": self.task.extra_state(),
            "trainer": {"best": self.best, "bad_evals": self.bad_evals, "fixed": self.fixed,
                        "last_eval": self.last_eval, "tracker": self.tracker.state()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        try:
            for k, m in self.task.modules.items():
                self.acc.unwrap_model(m).load_state_dict(state["modules"][k])
            for k, o in self.task.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
        except (KeyError, RuntimeError, ValueError) as e:
            raise UserError(f"The checkpoint does not fit this run's model or optimizer config ({str(e).splitlines()[0]}): "
                            "resume with the config the run was started with.") from e
        for k, s in self.schedulers.items():
            if k in state.get("schedulers", {}):
                s.load_state_dict(state["schedulers"][k])
        self._apply_configured_hyperparameters()
        if self.acc.scaler is not None and state.get("scaler"):
            self.acc.scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        rank = self.acc.process_index
        if len(rngs) == self.acc.num_processes:
            _set_rng_state(rngs[rank], self.data_generator)
        else:
            log.warning("The checkpoint was written by %d processes and this run has %d: RNG streams restart from the seed.",
                        len(rngs), self.acc.num_processes)
        self.task.load_extra_state(state.get("task", {}))
        t = state["trainer"]
        self.best, self.bad_evals, self.fixed = t["best"], t["bad_evals"], t["fixed"]
        self.last_eval = t.get("last_eval", {})
        self.step = int(state["step"])

    def _apply_configured_hyperparameters(self) -> None:
        """After loading optimizer and scheduler states: the config's lr, betas, ... win."""
        for name, opt in self.task.optimizers.items():
            sched = self.schedulers.get(name)
            for i, (group, wanted) in enumerate(zip(opt.param_groups, self.configured[name])):
                changed = {k: (group.get(k), v) for k, v in wanted.items() if group.get(k) != v and k != "lr"}
                if group.get("initial_lr", group.get("lr")) != wanted["lr"]:
                    changed["lr"] = (group.get("initial_lr", group.get("lr")), wanted["lr"])
                if changed and self.main:
                    log.warning("Resuming with the config's %s optimizer settings: %s.", name,
                                ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items()))
                group.update(wanted)
                if sched is not None:
                    group["initial_lr"] = sched.base_lrs[i] = wanted["lr"]
                    group["lr"] = wanted["lr"] * sched.lr_lambdas[i](sched.last_epoch)

    def save(self, name: str = "last") -> None:
        average_buffers(self.acc, self.task.modules.values())  # collective, like the RNG gather below
        state = self.state_dict()  # collective (RNG gather): every rank calls it
        if self.main:
            save_checkpoint(self.run_dir.checkpoints_dir / name, state, self.step)
        self.acc.wait_for_everyone()
        if name == "last":
            self.checkpoint_step = self.step

    def resume(self) -> Optional[dict]:
        """Continue from `trainer.resume` ("auto": this run dir's last checkpoint if there is one)."""
        spec = self.cfg.resume
        if not spec:
            return None
        if spec == "auto":  # the newest checkpoint that verifies (checkpoint.load_for_resume)
            found = load_for_resume(self.run_dir.checkpoints_dir)
            if found is None:
                log.info("trainer.resume=auto: no checkpoint in %s, starting fresh.", self.run_dir.root)
                return None
            folder, state, meta = found.folder, found.state, found.meta
        else:
            folder = spec
            state, meta = load_checkpoint(folder)
        self.load_state_dict(state)
        self.checkpoint_step = self.step
        self.tracker_resume_state = state["trainer"].get("tracker") or {}
        self.acc.wait_for_everyone()  # every rank has read it before it is moved back into place
        if self.main:
            if spec == "auto":
                settle_resumed(self.run_dir.checkpoints_dir, found)
            self.run_dir.truncate_metrics(self.step)
        log.info("Resumed from %s at step %d.", folder, self.step)
        return meta

    # -- the loop --------------------------------------------------------------------------
    def iteration(self) -> None:
        """One iteration: d_steps critic steps, then g_steps generator steps."""
        bs = self.cfg.batch_size
        for _ in range(self.cfg.d_steps):
            x, y = self.dataset.sample(bs, self.data_generator)
            self._accumulate(self.task.d_step(x, y))
        for _ in range(self.cfg.g_steps):
            x, y = self.dataset.sample(bs, self.data_generator)
            self._accumulate(self.task.g_step(x, y))
        for s in self.schedulers.values():
            s.step()
        self._count += 1

    def _accumulate(self, logs: dict[str, torch.Tensor]) -> None:
        for k, v in logs.items():
            self._sums[k] = self._sums[k] + v if k in self._sums else v.clone()
            self._counts[k] = self._counts.get(k, 0) + 1

    def _flush_train_logs(self) -> dict[str, float]:
        """Average the window's losses (over iterations and processes); one host sync."""
        if not self._sums:
            return {}
        keys = sorted(self._sums)
        values = torch.stack([self._sums[k].float() / self._counts[k] for k in keys])
        if self.acc.num_processes > 1:
            values = self.acc.reduce(values, reduction="mean")
        floats = values.tolist()
        elapsed = time.perf_counter() - self._window_start
        out = {f"train/{k}": v for k, v in zip(keys, floats)}
        out["perf/it_per_s"] = self._count / max(elapsed, 1e-9)
        self._sums, self._counts, self._count, self._window_start = {}, {}, 0, time.perf_counter()
        bad = [k for k, v in out.items() if not np.isfinite(v)]
        if bad:
            raise DivergedError(self.step, bad[0], self.checkpoint_step)
        return out

    def _check_finite(self) -> None:
        """At every log step and before every checkpoint: the losses not yet logged and every
        parameter and float buffer are finite, on all processes (the flags are reduced, so that
        every rank stops together)."""
        checks = [(f"train/{k}", torch.isfinite(v).all()) for k, v in sorted(self._sums.items())]
        for name, m in self.task.modules.items():
            tensors = [t for t in (*m.parameters(), *m.buffers()) if t.is_floating_point()]
            if tensors:
                checks.append((f"a parameter or buffer of the {name}", torch.stack([torch.isfinite(t).all() for t in tensors]).all()))
        if not checks:
            return
        bad = torch.stack([~ok for _, ok in checks]).float()
        if self.acc.num_processes > 1:
            bad = self.acc.reduce(bad, reduction="sum")
        flags = bad.tolist()
        for (what, _), flag in zip(checks, flags):
            if flag > 0:
                raise DivergedError(self.step, what, self.checkpoint_step)

    @contextmanager
    def _side_rng(self):
        """Sampling for grids and evaluation must not move the training RNG streams."""
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed + 7919 * (self.step + 1))
            yield

    def write_samples(self) -> None:
        if not self.main:
            return
        with self._side_rng():
            samples = self.task.sample_grid(self.fixed)
        raw = {"samples": samples.cpu(), **{k: v.cpu() for k, v in self.fixed.items() if k != "z"}}
        self.run_dir.samples_dir.mkdir(parents=True, exist_ok=True)
        torch.save(raw, self.run_dir.sample_path(self.step, ".pt"))
        if self.dataset.kind == "points":
            real, _ = self.dataset.all(2500)
            picture = scatter_plot(samples, real, getattr(self.dataset, "means", None), title=f"step {self.step}")
        else:
            picture = upscale(image_grid(samples, rows=self.task.grid_rows(self.fixed)))
        save_png(picture, self.run_dir.sample_path(self.step, ".png"))
        self.tracker.log_images({"samples": picture}, self.step, captions={"samples": f"step {self.step}"})
        self._notify("samples")

    def evaluate(self) -> None:
        average_buffers(self.acc, self.task.modules.values())  # every rank samples from the same G
        with self._side_rng():
            metrics = self.evaluator.evaluate(self.task, self.step)
        if not metrics:
            return
        self.last_eval = metrics
        if self.main:
            self.run_dir.append_metrics({"step": self.step, **metrics})
            self.tracker.log(metrics, self.step)
            self._notify("eval")
        key, mode = self.eval_cfg.best_metric, self.eval_cfg.best_mode
        if not key or key not in metrics or not np.isfinite(metrics[key]):
            return
        old = self.best.get(key)
        improved = old is None or (metrics[key] < old if mode == "min" else metrics[key] > old)
        if improved:
            self.best = {"step": self.step, key: metrics[key], "metrics": dict(metrics)}
            self.bad_evals = 0
            self.save("best")
        else:
            self.bad_evals += 1
            patience = self.eval_cfg.early_stop_patience
            if patience and self.bad_evals >= patience:
                log.info("Early stop at step %d: %s has not improved for %d evaluations (best %.4g at step %d).",
                         self.step, key, self.bad_evals, self.best[key], self.best["step"])
                raise _Stop("early_stopped")

    def _notify(self, event: str) -> None:
        if not self.main:
            return
        for fn in self.callbacks:
            try:
                fn(event, self)
            except Exception:  # noqa: BLE001 - a dashboard must never stop training
                log.warning("Callback %r failed on %s:\n%s", fn, event, traceback.format_exc())

    def summary(self) -> dict[str, Any]:
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
            **({"replicas": self.replicas} if self.replicas else {}),
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

    def _on_signal(self, signum, frame):
        # A second Ctrl-C stops now, keeping the last checkpoint. A signal within a second of the first
        # is the same request: SLURM's scancel (or a kill of the process group) reaches every rank and
        # `accelerate launch` forwards it once more, and that echo must not cut the clean stop short.
        if self._stop_requested and time.monotonic() - self._stop_time > 1.0:
            raise KeyboardInterrupt
        if self._stop_requested:
            return
        self._stop_requested, self._stop_time = True, time.monotonic()
        if self.main:
            log.warning("Stop requested: stopping at the next log step and saving a checkpoint (press Ctrl-C again to quit now).")

    def _stop_agreed(self) -> bool:
        flag = self._stop_requested
        if self.acc.num_processes > 1:
            t = torch.tensor([1.0 if flag else 0.0], device=self.acc.device)
            flag = bool(self.acc.reduce(t, reduction="sum").item() > 0)
        return flag

    def _save_on_stop(self) -> None:
        """Interrupted or early-stopped: keep the state reached, if it is finite."""
        try:
            self._check_finite()
            self.save("last")
        except DivergedError as e:
            self.status, self.error = "diverged", str(e)
            if self.main:
                log.error("%s", e)
        except KeyboardInterrupt:
            self.error = "stopped by a second Ctrl-C while saving; the last complete checkpoint is kept"
        except UserError as e:
            self.status, self.error = "failed", str(e)
            raise

    def fit(self) -> dict[str, Any]:
        """Train to `trainer.steps`; returns the final summary (also written to summary.json)."""
        cfg = self.cfg
        every = lambda n: n > 0 and self.step % n == 0  # noqa: E731
        old_handlers = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old_handlers[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread
                pass
        self._write_summary()
        self._pbar = tqdm(total=cfg.steps, initial=self.step, disable=not (self.main and cfg.progress),
                          desc=str(self.config.get("name", "train")), dynamic_ncols=True, mininterval=1.0)
        self._window_start = time.perf_counter()
        try:
            if self.step == 0 and cfg.sample_every > 0:
                self.write_samples()
            while self.step < cfg.steps:
                self.iteration()
                self.step += 1
                self._pbar.update(1)
                if every(cfg.log_every) or self.step == cfg.steps:
                    self.last_train = self._flush_train_logs()
                    if self.main:
                        self.run_dir.append_metrics({"step": self.step, **self.last_train})
                        self.tracker.log(self.last_train, self.step)
                        self._pbar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in self.last_train.items()
                                                if k in ("train/d_loss", "train/g_loss", "train/wasserstein")})
                    self._check_finite()
                    if self._stop_agreed():
                        raise _Stop("interrupted")
                if every(cfg.sample_every) and self.step < cfg.steps:
                    self.write_samples()
                if every(self.eval_cfg.every) and self.step < cfg.steps:
                    self.evaluate()
                if every(cfg.checkpoint_every) and self.step < cfg.steps:
                    self._check_finite()
                    self.save("last")
                    self._write_summary()
            self._check_finite()
            self.save("last")
            self.check_replicas()
            if cfg.sample_every > 0:
                self.write_samples()
            self.evaluate()
            self.status = "finished"
        except _Stop as stop:
            self.status = stop.status
            self._save_on_stop()
            self.check_replicas()
        except DivergedError as e:
            self.status, self.error = "diverged", str(e)
            if self.main:
                log.error("%s", e)
        except KeyboardInterrupt:
            self.status, self.error = "interrupted", "stopped by a second Ctrl-C; the last checkpoint is kept"
        except UserError as e:
            self.status, self.error = "failed", str(e)
            raise
        except OSError as e:
            self.status, self.error = "failed", f"{type(e).__name__}: {e}"
            if e.errno in DISK_ERRORS:  # disk full, quota, file size limit, read-only: the user's to fix
                self.error = (f"Could not write '{e.filename or self.run_dir.root}' ({e.strerror}); the last checkpoint "
                              "is kept: free disk space (or fix permissions) and continue with trainer.resume=auto.")
                raise UserError(self.error) from e
            if self.main:
                log.error("Run failed:\n%s", traceback.format_exc())
            raise
        except BaseException as e:
            self.status, self.error = "failed", f"{type(e).__name__}: {e}"
            if self.main:
                log.error("Run failed:\n%s", traceback.format_exc())
            raise
        finally:
            self._pbar.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            self._write_summary(best_effort=True)
            self._notify("end")
        return self.summary()
