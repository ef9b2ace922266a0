"""The local sweep agent: W&B's own sweep engine proposes trials, each runs as a subprocess.

What `wandb agent` does with a server, done here with files: ask the engine (`sweeps.next_run`)
for the next trial given every trial so far (its config, state, metric history and summary),
build the trial's command line as the agent does, run it with its own run dir under the sweep
dir, feed the metric history read from `metrics.jsonl` to hyperband (`sweeps.stop_runs`) while
trials run and stop the ones it picks (SIGTERM, as the agent does: the trial saves a checkpoint
and exits with status `stopped_by_sweep` and code 0), and read each trial's result back from its `summary.json`.

A failed trial is recorded and the sweep goes on. Ctrl-C (or SIGTERM) asks every running trial
to stop, waits for their checkpoints and records them as interrupted; a second Ctrl-C kills them.
Running the same command again continues the sweep: interrupted trials resume from their
checkpoints, then new trials are proposed until the sweep has `count` of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from tqdm.auto import tqdm

from gan_platform.errors import UserError
from gan_platform.runs.rundir import RunDir
from gan_platform.training.stopping import LOCAL_SWEEP_ENV
from gan_platform.sweep.leaderboard import write_leaderboard
from gan_platform.sweep.spec import engine, grid_size, render_args, trial_command
from gan_platform.sweep.state import SweepState, Trial, lock, metric_value

# Environment a W&B agent gives its trials; a local trial must not pretend to belong to a W&B sweep.
AGENT_ENV = ("WANDB_SWEEP_ID", "WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH")
EXIT_INTERRUPTED = 130


@dataclass
class TrialProcess:
    """A running trial: its process, its console log and why we asked it to stop, if we did."""

    trial: Trial
    popen: subprocess.Popen
    log: Any
    stop_reason: Optional[str] = None     # "early_terminate" or "interrupt"
    history: list = field(default_factory=list)
    history_key: tuple = ()


class SweepRunner:
    """Runs the sweep `config` in `sweep_dir` until it has `count` trials (grid: until the grid is done)."""

    def __init__(self, config: dict[str, Any], sweep_dir: Path, source: str, count: Optional[int] = None,
                 parallel: int = 1, poll_s: float = 0.5, grace_s: float = 120.0,
                 echo: Callable[[str], None] = tqdm.write):
        self.config, self.dir, self.source = config, Path(sweep_dir), source
        self.parallel, self.poll_s, self.grace_s, self.echo = parallel, poll_s, grace_s, echo
        grid = grid_size(config)
        self.target = min(count, grid) if count is not None and grid is not None else (count if count is not None else grid)
        if self.target is None:
            raise UserError(f"Method {config['method']} never runs out of trials: pass --count N.")
        self.metric = (config.get("metric") or {}).get("name")
        self.active: dict[str, TrialProcess] = {}
        self._stop_signals = 0
        self._warned_metric = False
        self._ended_runs: dict[tuple, Any] = {}

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        """Run trials; returns 0 when the sweep is done, 130 when it was interrupted."""
        handle = lock(self.dir)
        if handle is None:
            raise UserError(f"Another sweep runner is using {self.dir}: wait for it to finish or stop it first.")
        try:
            self.state = SweepState.open(self.dir, self.config, self.source)
            for trial in self.state.unfinished():
                if trial.pid and _alive(trial.pid):
                    raise UserError(f"{trial.id} of this sweep still runs as process {trial.pid}: "
                                    "stop it before continuing the sweep.")
            self.state.save()
            paths = self._run_trials()
        finally:
            handle.close()
        self._report(paths)
        return EXIT_INTERRUPTED if self._stop_signals else 0

    def _run_trials(self) -> dict[str, Path]:
        resume = self.state.unfinished()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        done = sum(t.state not in ("running", "interrupted") for t in self.state.trials)
        self.bar = tqdm(total=self.target, initial=done, desc=f"sweep {self.dir.name}", unit="trial", disable=None)
        exhausted = False
        try:
            while not self._stop_signals:
                while len(self.active) < self.parallel and not self._stop_signals:
                    if resume:
                        self._start(resume.pop(0), resume=True)
                    elif not exhausted and len(self.state.trials) < self.target:
                        exhausted = not self._propose_and_start()
                    else:
                        break
                if not self.active:
                    break
                time.sleep(self.poll_s)
                self._reap()
                self._early_terminate()
            if self._stop_signals:
                self._interrupt_all()
        except KeyboardInterrupt:  # a second Ctrl-C before the trials were asked to stop
            self._kill_all()
        except BaseException:  # a failure of the runner itself: no trial may outlive it
            self._kill_all()
            raise
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            self.bar.close()
            self.state.save()
        return write_leaderboard(self.state)

    def _on_signal(self, signum, frame) -> None:
        self._stop_signals += 1
        if self._stop_signals == 1:
            self.echo("Stopping the sweep: running trials save a checkpoint and stop (Ctrl-C again to kill them).")
        else:
            raise KeyboardInterrupt

    # -- proposing and starting ------------------------------------------------------------
    def engine_runs(self) -> list:
        """Every trial as the engine sees it, with the histories read so far (an ended trial's are read once)."""
        runs = []
        for t in self.state.trials:
            if t.id in self.active:
                runs.append(t.sweep_run(self.dir, self.active[t.id].history))
                continue
            key = (t.id, t.state)
            if key not in self._ended_runs:
                self._ended_runs[key] = t.sweep_run(self.dir)
            runs.append(self._ended_runs[key])
        return runs

    def _propose_and_start(self) -> bool:
        proposal = engine().next_run(self.config, self.engine_runs())
        if proposal is None:  # the grid is done
            return False
        trial = self.state.new_trial({k: v["value"] for k, v in proposal.config.items()}, proposal.search_info)
        self._start(trial)
        return True

    def _start(self, trial: Trial, resume: bool = False) -> None:
        run_dir = trial.run_dir(self.dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        trial.command = trial_command(self.config, trial.params) + (["trainer.resume=auto"] if resume else [])
        env = {k: v for k, v in os.environ.items() if k not in AGENT_ENV}
        env["GAN_RUN_DIR"] = str(run_dir)
        env[LOCAL_SWEEP_ENV] = "1"  # SIGTERM from this runner is the sweep's stop (training/stopping.py)
        log = open(run_dir / "console.log", "a")
        try:
            popen = subprocess.Popen(trial.command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:  # the command itself cannot start: a failed trial, and the sweep goes on
            log.close()
            trial.state, trial.error, trial.ended = "failed", f"cannot start {trial.command[0]}: {e}", time.time()
            self.state.save()
            self.bar.update(1)
            self.echo(f"{trial.id} failed: {trial.error}")
            return
        trial.state, trial.pid, trial.exit_code, trial.started = "running", popen.pid, None, time.time()
        self.active[trial.id] = TrialProcess(trial, popen, log)
        self.state.save()
        self.echo(f"{self._which(trial)} {'resumed' if resume else 'started'}: {' '.join(render_args(trial.params))}")

    # -- watching --------------------------------------------------------------------------
    def _refresh_history(self, proc: TrialProcess) -> None:
        path = RunDir(proc.trial.run_dir(self.dir)).metrics_path
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        key = (st.st_size, st.st_mtime_ns)
        if key != proc.history_key:
            proc.history, proc.history_key = proc.trial.history(self.dir), key

    def _reap(self) -> None:
        for trial_id in list(self.active):
            proc = self.active[trial_id]
            if proc.popen.poll() is not None:
                self._finish(proc)

    def _early_terminate(self) -> None:
        if "early_terminate" not in self.config or not self.active:
            return
        for proc in self.active.values():
            self._refresh_history(proc)
        for run in engine().stop_runs(self.config, self.engine_runs()):
            proc = self.active.get(run.name)
            if proc is None or proc.stop_reason:
                continue
            proc.stop_reason = "early_terminate"
            info = run.early_terminate_info or {}
            why = " ".join(str((info.get("lines") or [""])[-1]).split())  # the engine's line about this run
            bands = {str(b): t for b, t in zip(info.get("bands", []), info.get("thresholds", [])) if t != float("inf")}
            proc.trial.stop_info = {"reason": why, "thresholds": bands}
            proc.popen.send_signal(signal.SIGTERM)  # what `wandb agent` does with a run the server stops
            self.echo(f"{run.name} stopped early by {self.config['early_terminate']['type']}: {why}")

    def _interrupt_all(self) -> None:
        """Ask every running trial to stop (each saves a checkpoint); kill them on a second Ctrl-C."""
        for proc in self.active.values():
            proc.stop_reason = "interrupt"
            proc.popen.send_signal(signal.SIGINT)
        deadline = time.monotonic() + self.grace_s
        try:
            while self.active and time.monotonic() < deadline:
                time.sleep(0.2)
                self._reap()
        except KeyboardInterrupt:
            pass
        self._kill_all()  # a second Ctrl-C, or past the grace period

    def _kill_all(self) -> None:
        for proc in list(self.active.values()):
            proc.stop_reason = proc.stop_reason or "interrupt"
            proc.popen.kill()
            proc.popen.wait()
            self._finish(proc)

    def _finish(self, proc: TrialProcess) -> None:
        trial, code = proc.trial, proc.popen.returncode
        proc.log.close()
        del self.active[trial.id]
        summary = trial.summary(self.dir)
        trial.exit_code, trial.status, trial.ended, trial.pid = code, summary.get("status"), time.time(), None
        trial.metric = metric_value(summary.get("final") or {}, self.metric) if self.metric else None
        if proc.stop_reason == "early_terminate":
            trial.state = "stopped"
        elif proc.stop_reason == "interrupt" and code != 0:
            trial.state = "interrupted"
        else:
            trial.state = "finished" if code == 0 else "failed"
        if trial.state == "failed":
            trial.error = summary.get("error") or _last_line(trial.run_dir(self.dir) / "console.log")
        self.state.save()
        if trial.state != "interrupted":
            self.bar.update(1)
            write_leaderboard(self.state)
        self.echo(f"{self._which(trial)} {trial.state} (exit {code})" + _result(summary, self.metric, trial.metric)
                  + (f": {trial.error}" if trial.error else ""))
        if trial.state == "finished" and self.metric and trial.metric is None and not self._warned_metric:
            self._warned_metric = True
            keys = ", ".join(sorted((summary.get("final") or {}).keys()))
            self.echo(f"warning: {trial.id} finished without the sweep metric '{self.metric}' in its summary "
                      f"(it has {keys}); check metric.name in {self.source}.")

    def _which(self, trial: Trial) -> str:
        """`trial 3 of 8 (trial-002)`: its place in the sweep, and the folder it runs in."""
        number = next(i for i, t in enumerate(self.state.trials, 1) if t.id == trial.id)
        return f"trial {number} of {max(self.target, len(self.state.trials))} ({trial.id})"

    def _report(self, paths: dict[str, Path]) -> None:
        counts: dict[str, int] = {}
        for t in self.state.trials:
            counts[t.state] = counts.get(t.state, 0) + 1
        self.echo(f"Sweep {self.dir}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) +
                  f"; leaderboard: {' and '.join(str(p) for p in paths.values())}")
        if self._stop_signals:
            self.echo("Run the same command again to continue the sweep.")


def _result(summary: dict[str, Any], metric: Optional[str], value: Optional[float]) -> str:
    """`: collapse/modes 8` for an ended trial: the sweep's metric, else its headline metric."""
    from gan_platform.runs.metrics import headline_metrics

    final = summary.get("final") or {}
    if metric and value is not None:
        return f": {metric} {value:.4g}"
    lead = headline_metrics(final)[:1]
    return f": {lead[0]} {final[lead[0]]:.4g}" if lead and isinstance(final[lead[0]], (int, float)) else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    return True


def _last_line(path: Path) -> Optional[str]:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None
