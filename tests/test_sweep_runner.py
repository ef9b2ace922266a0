"""The local sweep runner end to end: real trials (tiny ring8 runs) proposed by W&B's sweep engine."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml

from helpers import cli_env, run_cli

pytestmark = pytest.mark.slow

TINY_COMMAND = ["${env}", "${interpreter}", "-m", "gan_platform", "dataset=ring8", "model=mlp",
                "model.generator.hidden=32", "model.discriminator.hidden=32", "trainer.batch_size=16",
                "trainer.log_every=5", "trainer.progress=false", "trainer.sample_every=0", "trainer.grid_size=16",
                "tracker=none"]


def write_sweep(path: Path, method: str, parameters: dict, steps: int | None = 20, **extra) -> Path:
    command = TINY_COMMAND + ([f"trainer.steps={steps}"] if steps else []) + ["${args_no_hyphens}"]
    config = {"method": method, "metric": {"name": "train/d_loss", "goal": "minimize"},
              "parameters": parameters, "command": command, **extra}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def trials(sweep_dir: Path) -> list[dict]:
    return json.loads((sweep_dir / "sweep.json").read_text())["trials"]


def final(run_dir: Path, key: str = "train/d_loss") -> float:
    return json.loads((run_dir / "summary.json").read_text())["final"][key]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run the runner in-process with the environment a user's shell would give its trials."""
    monkeypatch.chdir(tmp_path)
    for k, v in cli_env().items():
        monkeypatch.setenv(k, v)
    return tmp_path


def test_grid_sweep_runs_every_trial_and_ranks_them(tmp_path):
    """The length comes from the command line (`gan-sweep FILE --parallel 2 trainer.steps=20`: added to
    every trial); each trial is announced as `trial i of N` with its parameters, and its result."""
    spec = write_sweep(tmp_path / "grid.yaml", "grid", {"loss": {"values": ["minimax", "hinge", "least_squares"]}},
                       steps=None)
    proc = run_cli([str(spec), "--parallel", "2", "trainer.steps=20", "--poll", "0.2"], cwd=tmp_path,
                   module="gan_platform.sweep")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    sweep_dir = tmp_path / "outputs" / "sweeps" / "grid"
    recorded = trials(sweep_dir)
    assert all(t["command"][-1] == "trainer.steps=20" for t in recorded)
    said = proc.stdout + proc.stderr
    for i, t in enumerate(recorded, 1):
        assert f"trial {i} of 3 ({t['id']}) started: loss={t['params']['loss']}" in said
        assert f"trial {i} of 3 ({t['id']}) finished (exit 0): train/d_loss {t['metric']:.4g}" in said
    assert sorted(t["params"]["loss"] for t in recorded) == ["hinge", "least_squares", "minimax"]
    assert [t["state"] for t in recorded] == ["finished"] * 3
    board = json.loads((sweep_dir / "leaderboard.json").read_text())
    values = [row["metric"] for row in board["trials"]]
    assert values == sorted(values) and len(values) == 3  # minimize: best first
    for row in board["trials"]:  # each value is the trial's own final value
        assert row["metric"] == pytest.approx(final(sweep_dir / row["trial"]))
        assert row["step"] == 20
    assert board["best"] == board["trials"][0]["trial"]
    assert (sweep_dir / "leaderboard.html").exists() or list(sweep_dir.glob("*.html"))
    # the trial ran with the params it was given
    for t in recorded:
        config = yaml.safe_load((sweep_dir / t["id"] / ".hydra" / "config.yaml").read_text())
        assert config["loss"]["name"] == t["params"]["loss"]
    # running it again continues the finished sweep: nothing new to do
    from gan_platform.sweep.runner import SweepRunner
    from gan_platform.sweep.spec import load_sweep

    from gan_platform.errors import UserError
    from gan_platform.sweep.spec import add_overrides

    config = add_overrides(load_sweep(spec, check_compose=False), ["trainer.steps=20"], spec)
    said: list[str] = []
    assert SweepRunner(config, sweep_dir, str(spec), echo=said.append).run() == 0
    assert len(trials(sweep_dir)) == 3 and "3 finished" in said[-1] and not any("started" in s for s in said)
    # other overrides make another sweep: refused, not mixed into this one
    with pytest.raises(UserError, match="holds a sweep of a different config"):
        SweepRunner(add_overrides(load_sweep(spec, check_compose=False), ["trainer.steps=30"], spec), sweep_dir,
                    str(spec), echo=said.append).run()
    for words, phrase in ((["loss=hinge"], "loss is a parameter of the sweep"), (["--x"], "'--x' is not an override")):
        with pytest.raises(UserError, match=phrase):
            add_overrides(load_sweep(spec, check_compose=False), words, spec)


def test_bayes_sweep_proposes_from_earlier_results(in_tmp):
    from gan_platform.sweep.runner import SweepRunner
    from gan_platform.sweep.spec import load_sweep

    spec = write_sweep(in_tmp / "bayes.yaml", "bayes",
                       {"optimizer.lr": {"distribution": "log_uniform_values", "min": 0.0001, "max": 0.01}})
    config = load_sweep(spec)
    runner = SweepRunner(config, in_tmp / "sweep", str(spec), count=3, poll_s=0.2, echo=lambda s: None)
    assert runner.run() == 0
    recorded = trials(in_tmp / "sweep")
    assert [t["state"] for t in recorded] == ["finished"] * 3
    lrs = [t["params"]["optimizer.lr"] for t in recorded]
    assert all(0.0001 <= lr <= 0.01 for lr in lrs) and len(set(lrs)) == 3
    # The engine's own account: the first proposal had no results to learn from, the third had two.
    assert "no valid samples" in recorded[0]["search_info"]["warnings"]
    assert "no valid samples" not in recorded[2]["search_info"]["warnings"]
    assert recorded[2]["search_info"]["predicted_value"] is not None
    # and the results it learned from are the trials' own metrics, as read back from their run dirs
    runs = runner.engine_runs()
    for t, run in zip(recorded, runs):
        assert run.state == "finished"
        assert run.summary_metrics["train/d_loss"] == pytest.approx(final(in_tmp / "sweep" / t["id"]))
        assert len(run.metric_history("train/d_loss")) == 4  # logged at steps 5, 10, 15, 20


def test_hyperband_stops_a_trial_that_falls_behind(in_tmp):
    """Trial 0 (lr 1e-3) lowers D's loss at once; trial 1 (lr 1e-8) cannot move, so at the 3rd logged
    value it is worse than trial 0 was, and hyperband (eta 3: keep the best third) stops it."""
    from gan_platform.sweep.runner import SweepRunner
    from gan_platform.sweep.spec import load_sweep

    spec = write_sweep(in_tmp / "hb.yaml", "grid", {"optimizer.lr": {"values": [0.001, 1.0e-8]}}, steps=600,
                       early_terminate={"type": "hyperband", "min_iter": 3, "eta": 3})
    runner = SweepRunner(load_sweep(spec), in_tmp / "sweep", str(spec), poll_s=0.1, echo=lambda s: None)
    assert runner.run() == 0
    first, second = trials(in_tmp / "sweep")
    assert first["state"] == "finished" and json.loads((in_tmp / "sweep" / "trial-000" / "summary.json").read_text())["step"] == 600
    assert second["state"] == "stopped" and "STOP" in second["stop_info"]["reason"]
    summary = json.loads((in_tmp / "sweep" / "trial-001" / "summary.json").read_text())
    assert summary["status"] == "stopped_by_sweep" and summary["step"] < 600  # stopped, with a checkpoint
    assert second["exit_code"] == 0  # a stop the sweep asked for is no failure
    assert (in_tmp / "sweep" / "trial-001" / "checkpoints" / "last").is_dir()
    assert second["stop_info"]["thresholds"]["3"] > 0


def test_failed_trial_is_recorded_interrupt_is_clean_and_rerun_continues(in_tmp):
    from gan_platform.sweep.runner import SweepRunner
    from gan_platform.sweep.spec import load_sweep

    # trainer.steps=0 is refused by the trial itself (exit 2); the composition check is skipped so
    # that such a trial gets to run, as a trial that fails for any other reason would.
    spec = write_sweep(in_tmp / "s.yaml", "grid", {"trainer.steps": {"values": [0, 800]}}, steps=None)
    config = load_sweep(spec, check_compose=False)
    sweep_dir = in_tmp / "sweep"
    metrics = sweep_dir / "trial-001" / "metrics.jsonl"

    running = threading.Event()

    def press_ctrl_c_once_trial_1_trains():
        deadline = time.monotonic() + 240
        while running.is_set() and time.monotonic() < deadline:
            if metrics.exists() and metrics.read_text().count("\n") >= 2:
                os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in the terminal reaches the runner
                return
            time.sleep(0.05)

    running.set()
    threading.Thread(target=press_ctrl_c_once_trial_1_trains, daemon=True).start()
    runner = SweepRunner(config, sweep_dir, str(spec), poll_s=0.1, echo=lambda s: None)
    try:
        assert runner.run() == 130
    finally:
        running.clear()
    failed, interrupted = trials(sweep_dir)
    assert failed["state"] == "failed" and failed["exit_code"] == 2 and "trainer.steps must be positive" in failed["error"]
    assert interrupted["state"] == "interrupted"
    summary = json.loads((sweep_dir / "trial-001" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["step"] < 800
    # Run it again: the interrupted trial resumes from its checkpoint; the failed one stays failed.
    assert SweepRunner(config, sweep_dir, str(spec), poll_s=0.1, echo=lambda s: None).run() == 0
    failed, resumed = trials(sweep_dir)
    assert failed["state"] == "failed" and resumed["state"] == "finished"
    assert "trainer.resume=auto" in resumed["command"]
    steps = [r["step"] for r in map(json.loads, metrics.read_text().splitlines()) if "train/d_loss" in r]
    assert steps == list(range(5, 801, 5))  # every step logged once, across the interruption
