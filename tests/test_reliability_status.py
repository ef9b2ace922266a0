"""summary.json always says how a run ended: diverged, failed (disk full, an unexpected error),
early-stopped; each with the step, the error and the checkpoint that is kept."""

import json
import resource

import pytest
import torch

from helpers import TINY, train
from gan_platform.runs.checkpoint import load_checkpoint, read_meta
from gan_platform.runs.rundir import read_metrics
from helpers.live_run import LiveRun, logged_steps

# the plain groups (+experiment=none): a constant lr 2e-4
ARGS = TINY + ["+experiment=none", "dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
               "trainer.log_every=5", "trainer.checkpoint_every=10", "trainer.sample_every=0", "seed=2"]


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_divergence_stops_keeps_the_last_good_checkpoint_and_a_lower_lr_continues(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, ARGS + ["trainer.steps=20"])
    good_sha = read_meta(run_dir / "checkpoints" / "last")["sha256"]
    env = {"GAN_RUN_DIR": str(run_dir)}

    with LiveRun(ARGS + ["trainer.steps=40", "trainer.resume=auto", "optimizer.lr=1e30"], tmp_path, "blowup", env=env) as run:
        assert run.wait() == 3
    line = _one_line(run.stderr)
    assert "Training diverged at step 25: train/" in line and "is not finite" in line
    assert "checkpoints/last (step 20) is kept" in line and "trainer.resume=auto" in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["step"], summary["checkpoint_step"]) == ("diverged", 25, 20)
    assert summary["error"] in line
    state, meta = load_checkpoint(run_dir / "checkpoints" / "last")  # untouched, loadable, finite
    assert meta["step"] == 20 and meta["sha256"] == good_sha
    assert all(torch.isfinite(t).all() for net in state["modules"].values() for t in net.values())
    assert logged_steps(run_dir) == [5, 10, 15, 20]  # the non-finite window is not logged

    # The advice works: the config's learning rate replaces the checkpoint's on resume.
    with LiveRun(ARGS + ["trainer.steps=40", "trainer.resume=auto"], tmp_path, "calm", env=env) as run:
        assert run.wait() == 0, run.stderr
    assert run.resumed_step() == 20
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "finished"
    assert logged_steps(run_dir) == [5, 10, 15, 20, 25, 30, 35, 40]
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    assert state["optimizers"]["generator"]["param_groups"][0]["lr"] == 2e-4


def test_divergence_before_any_checkpoint_says_so(tmp_path):
    summary = train(tmp_path, ARGS + ["trainer.steps=10", "optimizer.lr=1e30"])
    assert summary["status"] == "diverged" and summary["step"] == 5 and summary["checkpoint_step"] is None
    assert "no checkpoint had been written yet" in summary["error"]
    assert not (tmp_path / "checkpoints").exists()


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path):
    """A file size limit (RLIMIT_FSIZE) makes the write of state.pt fail as a full disk does."""
    run_dir = tmp_path / "run"
    train(run_dir, ARGS + ["trainer.steps=20"])
    good = read_meta(run_dir / "checkpoints" / "last")
    limit = (run_dir / "checkpoints" / "last" / "state.pt").stat().st_size // 2
    assert limit > 16_000  # room for metrics.jsonl, summary.json and the config

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with LiveRun(ARGS + ["trainer.steps=40", "trainer.resume=auto"], tmp_path, "full",
                 env={"GAN_RUN_DIR": str(run_dir)}, preexec_fn=small_disk) as run:
        assert run.wait() == 2
    line = _one_line(run.stderr)
    assert line.startswith("gan_platform: error: Could not write checkpoint") and "File too large" in line
    assert "the previous checkpoint is kept" in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["step"], summary["checkpoint_step"]) == ("failed", 30, 20)
    assert "File too large" in summary["error"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name != "best") == ["last"]  # no half-written last.tmp
    state, meta = load_checkpoint(run_dir / "checkpoints" / "last")
    assert meta == good and state["step"] == 20


class ExplodingEvaluator:
    """An evaluator with a bug: fails at its second evaluation."""

    def evaluate(self, task, step):
        if step >= 10:
            raise RuntimeError(f"evaluator exploded at step {step}")
        return {}

    def protocol(self):
        return {}


class WorseningEvaluator:
    """A metric that only gets worse after the first evaluation: early stopping must trigger."""

    def evaluate(self, task, step):
        return {"eval/score": float(step)}

    def protocol(self):
        return {"eval/score": "the step, a metric that never improves"}


def test_an_unexpected_error_mid_run_is_failed_with_the_error(tmp_path, monkeypatch):
    monkeypatch.setattr("gan_platform.run.build_evaluator", lambda *a: ExplodingEvaluator())
    with pytest.raises(RuntimeError, match="exploded"):
        train(tmp_path, ARGS + ["trainer.steps=40", "eval.every=5", "trainer.checkpoint_every=5"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["step"] == 10
    assert summary["error"] == "RuntimeError: evaluator exploded at step 10"
    assert summary["checkpoint_step"] == 5 == read_meta(tmp_path / "checkpoints" / "last")["step"]


def test_early_stop_when_the_metric_stops_improving(tmp_path, monkeypatch):
    monkeypatch.setattr("gan_platform.run.build_evaluator", lambda *a: WorseningEvaluator())
    summary = train(tmp_path, ARGS + ["trainer.steps=100", "eval.every=5", "eval.best_metric=eval/score",
                                      "eval.best_mode=min", "eval.early_stop_patience=2"])
    # best at 5; no better at 10 and 15: two evaluations without improvement
    assert (summary["status"], summary["step"], summary["checkpoint_step"]) == ("early_stopped", 15, 15)
    assert summary["best"]["step"] == 5 and summary["best"]["eval/score"] == 5.0
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "early_stopped"
    assert load_checkpoint(tmp_path / "checkpoints" / "best")[1]["step"] == 5
    assert load_checkpoint(tmp_path / "checkpoints" / "last")[1]["step"] == 15
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if "eval/score" in r] == [5, 10, 15]
