"""Two real processes on the CPU (gloo), started the way users start them:

    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m gan_platform ...

Each case trains a tiny run with two processes and checks that two processes really ran, that they
wrote one run dir and nothing else, that their parameters are bit-identical at the end, and (where
`resume` is set) that a second two-process launch continues the same run dir from its checkpoint.
A new task joins by adding a line to TASKS.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY, cli_env
from gan_platform.checkpoint import load_checkpoint
from gan_platform.rundir import read_metrics

pytestmark = pytest.mark.slow

RING = ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32"]

# case -> (overrides, steps of the first launch, steps after resuming or None for one launch); the
# case's name is also the run's experiment name (outputs/<case>/...)
TASKS: dict[str, tuple[list[str], int, int | None]] = {
    # conditional WGAN-GP with wrong-label rejection: three D forwards and a double backward per D step
    "cgan_wgan_gp_ring8": (RING + ["loss=wasserstein", "loss.gradient_penalty=10", "task.conditional=true",
                                   "task.mismatch_weight=1", "trainer.d_steps=2", "trainer.checkpoint_every=3"], 6, 9),
    # DCGAN on digits: BatchNorm in G, whose statistics each rank keeps and the trainer averages
    "nsgan_digits": (["+experiment=nsgan", "model.generator.width=8", "model.discriminator.width=8",
                      "trainer.batch_size=8", "trainer.sample_every=2"], 3, None),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], cwd: Path, tmp: Path) -> subprocess.CompletedProcess:
    """`accelerate launch` with two CPU processes, as the README says; scratch files go to `tmp`."""
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), "-m", "gan_platform", *args]
    env = cli_env({"ACCELERATE_USE_CPU": "1", "TMPDIR": str(tmp)})
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _only_run_dir(cwd: Path, name: str) -> Path:
    runs = [p for p in (cwd / "outputs").rglob("summary.json")]
    assert [p.parent.parent.name for p in runs] == [name], f"expected one run dir of {name}, found {runs}"
    return runs[0].parent


@pytest.mark.parametrize("task", sorted(TASKS))
def test_two_processes_train_one_run(tmp_path, task):
    overrides, steps, resumed_steps = TASKS[task]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    common = [*TINY, *overrides, f"name={task}", "trainer.log_every=1", "eval.every=0"]
    first = launch(common + [f"trainer.steps={steps}"], tmp_path, tmp)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = _only_run_dir(tmp_path, task)
    final = steps
    if resumed_steps is not None:
        second = launch(common + [f"trainer.steps={resumed_steps}", "trainer.resume=auto"], tmp_path, tmp)
        assert second.returncode == 0, second.stderr[-3000:]
        assert _only_run_dir(tmp_path, task) == run_dir  # the same run dir, continued from the checkpoint
        assert f"at step {steps}." in second.stdout + second.stderr
        final = resumed_steps

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == final
    # two processes really ran: two ranks' fingerprints, two ranks' RNG streams, and they differ
    assert summary["num_processes"] == 2
    assert len(summary["replicas"]["sha256"]) == 2
    state, meta = load_checkpoint(run_dir / "checkpoints" / "last")
    assert meta["step"] == final and state["num_processes"] == 2 and len(state["rng"]) == 2
    assert not state["rng"][0]["data"].equal(state["rng"][1]["data"]), "both ranks drew the same data"
    # DDP kept the replicas in step: parameters and (averaged) buffers bit-identical on both ranks
    assert summary["replicas"]["in_sync"] is True
    assert summary["replicas"]["sha256"][0] == summary["replicas"]["sha256"][1]
    # every step logged once, by the main process only, averaged over both ranks
    steps_logged = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/d_loss" in r]
    assert steps_logged == list(range(1, final + 1))
    # ranks > 0 wrote nothing: no stray run dirs, no scratch dirs left behind
    assert not list(tmp.glob("gan_rank*"))
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == [task]
