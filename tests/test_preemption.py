"""Preemption (training/preemption.py): on the signal a cluster sends before it stops a job, the run
saves a checkpoint, ends `preempted` and has its job requeued; the requeued job continues the
checkpoint with nothing lost. Shown with submitit's real local executor through Hydra's
`hydra/launcher=submitit_local` (submitit's own requeue protocol, one task a process), and with the
command line as an sbatch script runs it, twice in the same GAN_RUN_DIR, bit for bit against a run
that was never stopped."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch

from helpers import TINY, train
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.rundir import read_metrics
from helpers.live_run import LiveRun, logged_steps
from helpers import installed

pytestmark = pytest.mark.slow

STEPS = 1500
ARGS = TINY + ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
               f"trainer.steps={STEPS}", "trainer.log_every=10", "trainer.checkpoint_every=0", "trainer.sample_every=0",
               "trainer.lr_decay=linear", "eval.enabled=false", "seed=7"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same run, never stopped (in this process: the same code and bits as the command line)."""
    run_dir = tmp_path_factory.mktemp("reference")
    train(run_dir, ARGS)
    return load_checkpoint(run_dir / "checkpoints" / "last")[0], list(read_metrics(run_dir / "metrics.jsonl"))


def assert_nothing_lost(run_dir: Path, reference) -> None:
    """Finished at STEPS with the reference's networks and every logged window once, with its values."""
    ref_state, ref_metrics = reference
    state, meta = load_checkpoint(run_dir / "checkpoints" / "last")
    assert meta["step"] == STEPS
    for net, params in ref_state["modules"].items():
        assert all(torch.equal(state["modules"][net][k], v) for k, v in params.items()), net
    records = list(read_metrics(run_dir / "metrics.jsonl"))
    assert [r["step"] for r in records] == list(range(10, STEPS + 1, 10))
    assert [(r["train/d_loss"], r["train/g_loss"]) for r in records] == \
           [(r["train/d_loss"], r["train/g_loss"]) for r in ref_metrics]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["step"]) == ("finished", STEPS)


def sweep_dir(cwd: Path) -> Path:
    """The multirun's sweep dir under `cwd` (a placeholder that does not exist until Hydra made it)."""
    found = sorted((cwd / "multirun" / "default").glob("*"))
    return found[0] if found else cwd / "multirun" / "none yet"


def submitit_tasks(folder: Path) -> list[int]:
    """The pids of the submitit tasks (`python -m submitit.core._submit FOLDER/...`) running under `folder`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in argv and any(a.startswith(str(folder).encode()) for a in argv):
            pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the submitit tasks in /proc")
@pytest.mark.skipif(not installed("hydra_plugins.hydra_submitit_launcher"),
                    reason="hydra-submitit-launcher is not installed (pip install '.[slurm]')")
def test_a_submitit_job_of_two_tasks_preempted_is_requeued_and_continues(tmp_path):
    """One task a process (`hydra.launcher.tasks_per_node=2`, CPU processes here, one a GPU on a
    cluster): the tasks find their ranks in the job's layout and train one run. SIGUSR2 (submitit's
    preemption signal) to both, as the cluster sends it: they stop at the same iteration, rank 0
    hands the signal to submitit, which requeues the job; the local executor starts both tasks again
    in the same run dir, which continue the checkpoint (no trainer.resume on the command line) to the
    end, every window logged once and both replicas equal."""
    args = ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "hydra.launcher.tasks_per_node=2", *ARGS]
    with LiveRun(args, tmp_path, "multirun", env={"ACCELERATE_USE_CPU": "1"}) as run:
        # the default sweep dir, multirun/NAME/TIME: the requeued job must find the same TIME
        run.wait_until(lambda: any(s >= 50 for s in logged_steps(sweep_dir(tmp_path) / "0")),
                       "training in the submitit job", timeout=300)
        sweep = sweep_dir(tmp_path)
        tasks = submitit_tasks(sweep / ".submitit")
        assert len(tasks) == 2
        for task in tasks:
            os.kill(task, signal.SIGUSR2)
        assert run.wait() == 0, run.stderr[-3000:]
    assert [p.name for p in (tmp_path / "multirun" / "default").iterdir()] == [sweep.name]
    summary = json.loads((sweep / "0" / "summary.json").read_text())
    assert (summary["status"], summary["step"], summary["num_processes"]) == ("finished", STEPS, 2)
    assert summary["replicas"]["in_sync"]
    assert [r["step"] for r in read_metrics(sweep / "0" / "metrics.jsonl")] == list(range(10, STEPS + 1, 10))
    logs = {p.name: p.read_text() for p in (sweep / ".submitit").rglob("*_log.out")}
    (rank0,) = [text for name, text in logs.items() if name.endswith("_0_log.out")]
    assert rank0.count("Preempted (SIGUSR2): stopping after this iteration") == 1
    said = [line for line in rank0.splitlines() if line.startswith("submitit INFO")]  # submitit's own lines, once each
    assert sum("Requeued job" in line for line in said) == 1  # submitit's requeue ...
    assert sum("Starting with JobEnvironment" in line for line in said) == 2  # ... started the job again
    assert rank0.count("Continuing the preempted run in") == 1
    resumed = [int(line.rsplit(" at step ", 1)[1].rstrip(". ")) for text in logs.values()
               for line in text.splitlines() if "Resumed from" in line]
    assert len(resumed) == 2 and len(set(resumed)) == 1 and 50 <= resumed[0] < STEPS  # both ranks, the same step


def test_an_sbatch_job_preempted_is_requeued_and_continues_with_nothing_lost(tmp_path, reference):
    """SIGUSR1 (`#SBATCH --signal=USR1@180`) to a run inside a SLURM job: it checkpoints and runs
    `scontrol requeue $SLURM_JOB_ID`; the requeued job runs the same command in the same GAN_RUN_DIR
    and continues. SLURM itself is not here: a stand-in `scontrol` on PATH records its arguments."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol_calls"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {"SLURM_JOB_ID": "4242", "GAN_RUN_DIR": str(tmp_path / "run"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    with LiveRun(ARGS, tmp_path, "first", env=env) as first:
        first.wait_until(lambda: any(s >= 50 for s in logged_steps(tmp_path / "run")), "training")
        first.signal(signal.SIGUSR1)
        assert first.wait() == 0, first.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "preempted" and summary["checkpoint_step"] == summary["step"] < STEPS
    assert calls.read_text() == "requeue 4242\n"
    with LiveRun(ARGS, tmp_path, "requeued", env=env) as requeued:  # the requeued job: the same command
        assert requeued.wait() == 0, requeued.stderr[-3000:]
    assert f"Continuing the preempted run in {tmp_path / 'run'}" in requeued.stdout
    assert_nothing_lost(tmp_path / "run", reference)
