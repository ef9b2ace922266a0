"""A real run killed with SIGKILL twenty times at seeded random moments (while it trains, inside
checkpoint writes of `last` and `best`, inside evaluations, the final one included) and resumed
with trainer.resume=auto after each kill ends with the metrics.jsonl and summary.json of a run
that never stopped: every record once, the same bits on the CPU (timings aside)."""

import json
import random

import pytest

from helpers import TINY, train
from gan_platform.runs.checkpoint import find_checkpoint, read_meta
from gan_platform.runs.rundir import read_metrics
from helpers.live_run import LiveRun, logged_steps, run_dirs

pytestmark = pytest.mark.slow

STEPS, LOG, CHECKPOINT, EVAL = 40, 5, 10, 20
ARGS = TINY + ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
               f"trainer.steps={STEPS}", f"trainer.log_every={LOG}", f"trainer.checkpoint_every={CHECKPOINT}",
               f"eval.every={EVAL}", "eval.num_samples=500", "trainer.sample_every=0", "trainer.lr_decay=linear",
               "seed=3"]
RESUME = ARGS + ["trainer.resume=auto"]
SAVE_STAGES = ("writing_state", "state_written", "complete", "rotated", "renamed")
KILLS = 20


# The evaluator's cost accounting in summary.json's protocol: the seconds and the number of
# evaluations this process spent (a resumed process counts only its own), beside the perf/* timings.
COST = ("eval_seconds", "evaluations")


def without_timings(value):
    """The record or summary with its wall-clock measurements and evaluation cost left out."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not k.startswith("perf/") and k not in COST}
    return value


def moments_after(step: int) -> list[tuple[str, int]]:
    """Kill moments a run resumed at checkpoint `step` reaches: (stage, step). A stage of a
    checkpoint write (the first save of that step: best before last at an evaluation step), an
    evaluation's record written ('evaluated'), or a training record logged ('logged'); the final
    save and evaluation are repeated by a run resumed at the last step, so they stay reachable."""
    later = [s for s in range(step + 1, min(step + CHECKPOINT, STEPS) + 1)] or [STEPS]
    out = [(stage, s) for s in later if s % CHECKPOINT == 0 or s == STEPS for stage in SAVE_STAGES
           if not (stage == "rotated" and s == CHECKPOINT)]  # the first save of all has nothing to move aside
    out += [("evaluated", s) for s in later if s % EVAL == 0 or s == STEPS]
    out += [("logged", s) for s in later if s % LOG == 0 and s > step]
    return out


def test_twenty_kills_anywhere_leave_the_records_and_summary_of_a_run_never_stopped(tmp_path):
    reference = tmp_path / "reference"
    train(reference, ARGS)
    work = tmp_path / "killed"
    work.mkdir()
    rng = random.Random(15)
    done: list[tuple[str, int]] = []
    for kill in range(KILLS):
        dirs = run_dirs(work)
        newest = find_checkpoint(dirs[0] / "checkpoints" / "last") if dirs else None
        at = read_meta(newest)["step"] if newest else 0
        # the last two kills land inside the final evaluation: twice over, as a user's bad luck would have it
        stage, step = ("evaluated", STEPS) if kill >= KILLS - 2 else rng.choice(moments_after(at))
        assert len(dirs) <= 1, dirs  # resume=auto continues the one run dir, even one killed before its first checkpoint
        args = RESUME if dirs else ARGS
        done.append((stage, step, at))
        with LiveRun(args, work, f"kill{kill}", pause_at=None if stage == "logged" else f"{stage}@{step}") as live:
            if stage == "logged":
                live.wait_until(lambda: (not dirs or "at step" in live.stdout or "starting fresh" in live.stdout)
                                and step in logged_steps(run_dirs(work)[0]), f"step {step} to be logged (kills {done})")
            else:
                live.wait_until(lambda: "paused in save at" in live.stderr, f"the pause (kills {done})")
            live.kill()
    assert len({s for s, _, _ in done}) >= 5, done  # the moments really differ
    with LiveRun(RESUME, work, "last") as last:
        assert last.wait() == 0, last.stderr
    (run_dir,) = run_dirs(work)

    mine, ref = list(read_metrics(run_dir / "metrics.jsonl")), list(read_metrics(reference / "metrics.jsonl"))
    assert [without_timings(r) for r in mine] == [without_timings(r) for r in ref]
    assert [r["step"] for r in mine if "train/d_loss" in r] == list(range(LOG, STEPS + 1, LOG))
    assert [r["step"] for r in mine if "collapse/modes" in r] == [EVAL, STEPS]  # the final evaluation once
    summary, ref_summary = (json.loads((d / "summary.json").read_text()) for d in (run_dir, reference))
    assert without_timings(summary) == without_timings(ref_summary)
    assert summary["status"] == "finished" and "train/d_loss" in summary["final"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best", "last"]
