"""An offline W&B run stopped, killed and resumed is one W&B run with every step once: its parts
share the run id, their history steps do not overlap and together are the run's logged steps, and
the upload command the run prints is the one wandb's own `wandb sync` parses and finds every part
with, each holding a run record (checked with wandb's own CLI code; nothing is uploaded, no server
is contacted)."""

import json
import shlex
import signal
from pathlib import Path

import pytest

from helpers import TINY
from gan_platform.runs.rundir import read_metrics
from gan_platform.tracking.wandb_files import history_steps, sync_command
from helpers.live_run import LiveRun, logged_steps, run_dirs
from helpers.wandb_offline import offline_runs, read_run

pytestmark = [pytest.mark.slow, pytest.mark.serial]  # kills a live run at chosen moments: alone

ARGS = [o for o in TINY if not o.startswith("tracker=")] + [
    "tracker=wandb", "dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
    "trainer.steps=40", "trainer.log_every=5", "trainer.checkpoint_every=10", "trainer.sample_every=20",
    "eval.every=20", "eval.num_samples=500", "seed=4",
    "tracker.init_timeout=300"]  # a loaded machine (the suite's other worker) can take W&B's service past the default 30 s


def test_a_killed_and_resumed_offline_run_uploads_as_one_run_with_every_step_once(tmp_path):
    env = {var: str(tmp_path / "wandb_home") for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")}
    work = tmp_path / "work"
    work.mkdir()
    # 1. Ctrl-C once step 15 is logged: W&B finishes this part
    with LiveRun(ARGS, work, "p1", env=env) as p1:
        p1.wait_until(lambda: bool(run_dirs(work)) and 15 in logged_steps(run_dirs(work)[0]), "step 15 to be logged")
        p1.signal(signal.SIGINT)
        assert p1.wait() == 130, p1.stderr
    (run_dir,) = run_dirs(work)
    at = json.loads((run_dir / "summary.json").read_text())["step"]
    # 2. resumed, killed inside the final evaluation (after the final checkpoint): W&B's service
    #    loses what it had not written of this part (often all of it)
    with LiveRun(ARGS + ["trainer.resume=auto"], work, "p2", env=env, pause_at="evaluated@40") as p2:
        p2.wait_paused()
        p2.kill()
    # 3. resumed at 40: the final evaluation again, to the end
    with LiveRun(ARGS + ["trainer.resume=auto"], work, "p3", env=env) as p3:
        assert p3.wait() == 0, p3.stderr
    assert (p2.resumed_step(), p3.resumed_step()) == (at, 40)

    parts = offline_runs(run_dir)
    # three attempts, three folders; a part W&B's service had not written a run record into is set aside
    # (on a loaded machine even the Ctrl-C'd first part can be), and what it lacked is replayed by the next
    assert len(parts) >= 1 and len(list((run_dir / "wandb").glob("offline-run-*"))) == 3
    runs = [read_run(p, wait_s=5) for p in parts]
    assert all(r["run"] is not None for r in runs)  # every part left to upload has its run record
    assert len({r["run"].run_id for r in runs}) == 1  # one W&B run
    steps = [[row["_step"] for row in r["history"]] for r in runs]
    assert [history_steps(p) for p in parts] == steps  # the platform reads the files as this test does
    flat = [s for part in steps for s in part]
    assert len(flat) == len(set(flat)), steps  # no step in two parts, nor twice in one
    logged = {r["step"] for r in read_metrics(run_dir / "metrics.jsonl")}
    assert set(flat) == logged | {0}, steps  # every logged step (and the first sample grid, at step 0) is there
    rows = {row["_step"]: row for r in runs for row in r["history"]}
    for record in read_metrics(run_dir / "metrics.jsonl"):
        for key in ("train/d_loss", "collapse/modes"):
            if key in record:
                assert rows[record["step"]][key] == record[key], (record["step"], key)

    # the command the run printed, parsed by wandb's own `sync` command, finds every part
    command = sync_command(run_dir / "wandb")
    assert command in p3.stdout + p3.stderr
    words = shlex.split(command)
    assert words[:2] == ["wandb", "sync"]
    from wandb.cli.beta_sync import _find_wandb_files
    from wandb.cli.cli import sync

    ctx = sync.make_context("sync", words[2:])  # click parses and checks the arguments; nothing runs
    paths = [Path(p) for p in ctx.params["paths"]]
    found = _find_wandb_files(paths, skip_synced=not ctx.params["include_synced"],
                              skip_online=not ctx.params["include_online"], verbose=False)
    assert {p.resolve() for p in found} == {p.resolve() for p in parts}
