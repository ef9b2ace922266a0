"""The sweep dir: one folder per trial (a run dir) and `sweep.json`, the record that lets a sweep continue.

    <sweep_dir>/sweep.json          the sweep config and every trial: params, state, command, metric
    <sweep_dir>/trial-000/          the trial's run dir (summary.json, metrics.jsonl, ...) + console.log
    <sweep_dir>/leaderboard.json    trials ranked by the sweep's metric

A trial's state is one of: running, finished, failed, stopped (by early termination), interrupted
(Ctrl-C; resumed when the sweep is run again). For W&B's sweep engine these are the run states
running, finished, failed, killed and preempted: the same states a W&B server reports, so grid,
random, bayes and hyperband see a local sweep as they see one on the server.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from gan_platform.errors import UserError
from gan_platform.runs.rundir import RunDir, atomic_write_json, read_metrics
from gan_platform.sweep.spec import engine, plain

ENGINE_STATES = {"running": "running", "finished": "finished", "failed": "failed", "stopped": "killed",
                 "interrupted": "preempted"}


@dataclass
class Trial:
    """One trial of a sweep and what is known about it."""

    id: str
    params: dict[str, Any]
    state: str = "running"
    command: list[str] = field(default_factory=list)
    status: Optional[str] = None          # the run's own status from summary.json
    exit_code: Optional[int] = None
    metric: Optional[float] = None        # the sweep metric's final value
    started: Optional[float] = None
    ended: Optional[float] = None
    search_info: Optional[dict] = None    # what the search method said when it proposed this trial
    stop_info: Optional[dict] = None      # early termination's reason and band thresholds
    error: Optional[str] = None
    pid: Optional[int] = None             # the trial's process while it runs

    def run_dir(self, sweep_dir: Path) -> Path:
        return sweep_dir / self.id

    def summary(self, sweep_dir: Path) -> dict[str, Any]:
        return RunDir(self.run_dir(sweep_dir)).read_summary()

    def history(self, sweep_dir: Path) -> list[dict[str, Any]]:
        return list(read_metrics(RunDir(self.run_dir(sweep_dir)).metrics_path))

    def sweep_run(self, sweep_dir: Path, history: Optional[list[dict]] = None):
        """This trial as W&B's sweep engine sees a run: config, state, history and summary."""
        SweepRun = engine().SweepRun
        final = self.summary(sweep_dir).get("final") or {}
        return SweepRun(name=self.id, state=ENGINE_STATES[self.state],
                        config={k: {"value": v} for k, v in self.params.items()},
                        history=self.history(sweep_dir) if history is None else history,
                        summary_metrics={k: v for k, v in final.items() if isinstance(v, (int, float))},
                        search_info=self.search_info)


def metric_value(values: dict[str, Any], name: str) -> Optional[float]:
    value = values.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class SweepState:
    """`sweep.json`: the sweep's config and its trials, rewritten atomically after every change."""

    def __init__(self, sweep_dir: Path, config: dict[str, Any], source: str):
        self.dir = Path(sweep_dir)
        self.config = config
        self.source = source
        self.trials: list[Trial] = []

    @property
    def path(self) -> Path:
        return self.dir / "sweep.json"

    @classmethod
    def open(cls, sweep_dir: Path, config: dict[str, Any], source: str) -> "SweepState":
        """The sweep in `sweep_dir` (new if there is none); refuses a dir that holds another sweep."""
        state = cls(sweep_dir, config, source)
        if state.path.exists():
            try:
                saved = json.loads(state.path.read_text())
            except json.JSONDecodeError:
                raise UserError(f"{state.path} is not valid JSON: move the sweep dir away and start again.") from None
            if json.dumps(plain(saved.get("config")), sort_keys=True) != json.dumps(plain(config), sort_keys=True):
                raise UserError(f"The sweep dir {sweep_dir} holds a sweep of a different config than {source}: "
                                "pass --dir NEW_DIR to start a new sweep, or restore the file to continue the old one.")
            state.trials = [Trial(**t) for t in saved.get("trials", [])]
        return state

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, {"source": self.source, "config": plain(self.config),
                                      "updated": time.time(), "trials": [plain(asdict(t)) for t in self.trials]})

    def new_trial(self, params: dict[str, Any], search_info: Optional[dict]) -> Trial:
        trial = Trial(id=f"trial-{len(self.trials):03d}", params=plain(params), search_info=plain(search_info),
                      started=time.time())
        self.trials.append(trial)
        return trial

    def unfinished(self) -> list[Trial]:
        """Trials to resume: interrupted ones, and ones left `running` by a runner that was killed."""
        return [t for t in self.trials if t.state in ("running", "interrupted")]


def lock(sweep_dir: Path):
    """An exclusive lock on the sweep dir, so two runners never drive the same sweep; None if held."""
    import fcntl

    sweep_dir.mkdir(parents=True, exist_ok=True)
    handle = open(sweep_dir / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
