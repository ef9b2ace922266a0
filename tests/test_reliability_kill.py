"""Real runs killed with SIGKILL (during a step, in the middle of a checkpoint write) and stopped
with Ctrl-C, then continued with trainer.resume=auto: same run dir, each step logged once, the
same bits as a run that was never stopped."""

import json
import shlex
import signal

import pytest
import torch

from helpers import TINY, run_cli, train
from gan_platform.runs.checkpoint import find_checkpoint, load_checkpoint, read_meta
from gan_platform.runs.rundir import RunDir, read_metrics
from helpers.live_run import LiveRun, logged_steps, run_dirs

STEPS = 60
# lr_decay=linear: the schedule depends on trainer.steps, which is the same for every process here.
ARGS = TINY + ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
               f"trainer.steps={STEPS}", "trainer.log_every=5", "trainer.checkpoint_every=10",
               "trainer.sample_every=0", "trainer.lr_decay=linear", "seed=11"]
RESUME = ARGS + ["trainer.resume=auto"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, never stopped (in this process: the same code and bits as the CLI)."""
    run_dir = tmp_path_factory.mktemp("reference")
    train(run_dir, ARGS)
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    return state, list(read_metrics(run_dir / "metrics.jsonl"))


def assert_same_as_reference(run_dir, reference):
    ref_state, ref_metrics = reference
    state, meta = load_checkpoint(run_dir / "checkpoints" / "last")
    assert meta["step"] == STEPS
    for net, params in ref_state["modules"].items():
        for k, v in params.items():
            assert torch.equal(state["modules"][net][k], v), (net, k)
    assert state["schedulers"] == ref_state["schedulers"]
    assert state["trainer"]["tracker"] == ref_state["trainer"]["tracker"]  # what a tracker needs to continue its run
    records = [r for r in read_metrics(run_dir / "metrics.jsonl") if "train/d_loss" in r]
    assert [r["step"] for r in records] == list(range(5, STEPS + 1, 5))  # each step once, in order
    for mine, ref in zip(records, ref_metrics):
        assert (mine["train/d_loss"], mine["train/g_loss"]) == (ref["train/d_loss"], ref["train/g_loss"]), mine["step"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["step"], summary["checkpoint_step"]) == ("finished", STEPS, STEPS)
    leftovers = sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name != "best")  # best/: the evaluator's
    assert leftovers == ["last"], leftovers


def test_sigkill_during_checkpoint_writes_and_steps_then_resume(tmp_path, reference):
    # 1. Killed while state.pt of step 20 is half written: the step-10 checkpoint is the last complete one.
    with LiveRun(ARGS, tmp_path, "p1", pause_at="writing_state@20") as p1:
        assert "writing_state (step 20)" in p1.wait_paused()
        p1.kill()
    (run_dir,) = run_dirs(tmp_path)
    ckpts = run_dir / "checkpoints"
    assert (ckpts / "last.tmp" / "state.pt").exists() and not (ckpts / "last.tmp" / "meta.json").exists()
    assert read_meta(ckpts / "last")["step"] == 10
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"  # SIGKILL: no last word
    assert logged_steps(run_dir) == [5, 10, 15, 20]

    # 2. Resumed from 10; killed between moving last/ (step 20) aside and renaming last.tmp/ (step 30) in.
    with LiveRun(RESUME, tmp_path, "p2", pause_at="rotated@30") as p2:
        p2.wait_paused()
        p2.kill()
    assert p2.resumed_step() == 10
    assert not (ckpts / "last").exists()
    assert read_meta(ckpts / "last.prev")["step"] == 20 and read_meta(ckpts / "last.tmp")["step"] == 30

    # 3. Resumed from the complete last.tmp/ (step 30, the newest); killed after last/ (step 40) is in
    #    place but before last.prev/ is deleted.
    with LiveRun(RESUME, tmp_path, "p3", pause_at="renamed@40") as p3:
        p3.wait_paused()
        p3.kill()
    assert p3.resumed_step() == 30
    assert read_meta(ckpts / "last")["step"] == 40 and read_meta(ckpts / "last.prev")["step"] == 30

    # 4. Resumed from 40; killed while training, after step 45 is logged (between checkpoints 40 and 50).
    #    (Should this test be slow to react, the final save waits for the kill.)
    with LiveRun(RESUME, tmp_path, "p4", pause_at=f"writing_state@{STEPS}") as p4:
        p4.wait_until(lambda: 45 in logged_steps(run_dir), "step 45 to be logged")
        p4.kill()
    assert p4.resumed_step() == 40
    newest = find_checkpoint(ckpts / "last")
    expected = read_meta(newest)["step"]
    assert expected in (40, 50)
    assert logged_steps(run_dir)[:9] == [5, 10, 15, 20, 25, 30, 35, 40, 45]

    # 5. Resumed from the newest complete checkpoint, in the same run dir, to the end.
    with LiveRun(RESUME, tmp_path, "p5") as p5:
        assert p5.wait() == 0, p5.stderr
    assert p5.resumed_step() == expected
    assert run_dirs(tmp_path) == [run_dir]
    assert_same_as_reference(run_dir, reference)


def test_ctrl_c_saves_marks_interrupted_exits_130_and_resumes(tmp_path, reference):
    with LiveRun(ARGS, tmp_path, "first") as first:
        first.wait_until(lambda: len(logged_steps(run_dirs(tmp_path)[0]) if run_dirs(tmp_path) else []) >= 3,
                         "step 15 to be logged")
        first.signal(signal.SIGINT)
        code = first.wait()
    assert code == 130, first.stderr
    (run_dir,) = run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 15 <= summary["step"] < STEPS
    # the checkpoint holds exactly the step the run stopped at: the iteration after the signal, logged
    # or not (the pending loss window is in the checkpoint, so the resumed run logs the same averages)
    assert read_meta(run_dir / "checkpoints" / "last")["step"] == summary["step"] == summary["checkpoint_step"]
    assert logged_steps(run_dir)[-1] == summary["step"] - summary["step"] % 5
    err = [line for line in first.stderr.splitlines() if line.strip()]
    assert err == [f"gan_platform: run ended with status 'interrupted' (run dir: {run_dir}); continue it with: "
                   f"{shlex.join(['python', '-m', 'gan_platform', '+experiment=default', *ARGS, f'trainer.resume={run_dir}'])}"]

    with LiveRun(RESUME, tmp_path, "second") as second:
        assert second.wait() == 0, second.stderr
    assert second.resumed_step() == summary["step"]
    assert_same_as_reference(run_dir, reference)


def test_a_live_run_dir_is_never_shared(tmp_path):
    with LiveRun(ARGS, tmp_path, "live", pause_at="complete@10") as live:
        live.wait_paused()  # alive, holding its run dir, with a complete step-10 checkpoint in last.tmp/
        (run_dir,) = run_dirs(tmp_path)
        summary = (run_dir / "summary.json").read_text()
        pinned = run_cli(RESUME, cwd=tmp_path, env={"GAN_RUN_DIR": str(run_dir)}, timeout=300)
        assert pinned.returncode == 2
        (line,) = [x for x in pinned.stderr.splitlines() if x.strip()]
        assert f"Run dir '{run_dir}' is in use by another running process" in line
        assert (run_dir / "summary.json").read_text() == summary  # the live run's files are untouched
        # resume=auto looks past the live run: this one starts its own run dir
        other = run_cli([a for a in RESUME if not a.startswith("trainer.steps=")] + ["trainer.steps=20"], cwd=tmp_path,
                        timeout=300)
        assert other.returncode == 0, other.stderr
        assert len(run_dirs(tmp_path)) == 2 and logged_steps(run_dir) == [5, 10]
        live.kill()
    assert RunDir(run_dir).in_use() is False  # the kernel dropped the lock with the killed process


def test_ctrl_c_stops_within_an_iteration_not_at_the_next_log_step(tmp_path):
    """With a log step far away (trainer.log_every=100000), Ctrl-C still stops after the current
    iteration: a checkpoint of the step reached, `interrupted`, and a resume that goes on from it."""
    far = [a for a in ARGS if not a.startswith(("trainer.steps=", "trainer.log_every=", "trainer.checkpoint_every="))]
    far += ["trainer.log_every=100000", "trainer.checkpoint_every=0", "eval.every=0"]
    with LiveRun(far + ["trainer.steps=1000000"], tmp_path, "first") as first:
        first.wait_until(lambda: bool(run_dirs(tmp_path)) and (run_dirs(tmp_path)[0] / "summary.json").exists(),
                         "training to start")
        first.signal(signal.SIGINT)
        code = first.wait(timeout=120)  # at the old next log step, 100,000 iterations later, it would not be done
    assert code == 130, first.stderr
    (run_dir,) = run_dirs(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    at = summary["step"]
    assert summary["status"] == "interrupted" and summary["error"] is None and 0 < at < 100000
    assert read_meta(run_dir / "checkpoints" / "last")["step"] == at == summary["checkpoint_step"]
    assert logged_steps(run_dir) == []  # no log step was reached
    with LiveRun(far + [f"trainer.steps={at + 3}", "trainer.resume=auto"], tmp_path, "second") as second:
        assert second.wait() == 0, second.stderr
    assert second.resumed_step() == at
    assert logged_steps(run_dir) == [at + 3]  # the last step's record, the window spanning the stop
