"""Two real processes on the CPU (gloo), started the way users start them:

    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m gan_platform ...

Each case trains a tiny run with two processes and checks that two processes really ran, that they
wrote one run dir and nothing else, that their parameters are bit-identical at the end, and (where
`interrupt` is set) that Ctrl-C stops both processes with one checkpoint and a second two-process
launch continues the same run dir from it.
A new task joins by adding a line to TASKS. CycleGAN's per-rank image pools have their own case: a
stopped and resumed two-process run ends equal to one that never stopped.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
import torch

from helpers import TINY, cli_env, train
from helpers.launch import finish, free_port, launch, only_run_dir
from gan_platform.training.distributed import check_gpus_for_processes
from gan_platform.errors import ConfigError
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.rundir import read_metrics

pytestmark = pytest.mark.slow

RING = ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32"]

# case -> (overrides, steps, interrupt): the case's name is also the run's experiment name. With
# `interrupt` the first launch is stopped by Ctrl-C (SIGINT to `accelerate launch`) once it logs,
# and a second launch resumes it for `steps` more iterations; otherwise one launch trains `steps`.
TASKS: dict[str, tuple[list[str], int, bool]] = {
    # conditional WGAN-GP with wrong-label rejection: three D forwards and a double backward per D step,
    # each batch in two rounds (trainer.micro_batch: the first round's backward skips DDP's all-reduce)
    "cgan_wgan_gp_ring8": (RING + ["loss=wasserstein", "loss.gradient_penalty=10", "task.conditional=true",
                                   "task.mismatch_weight=1", "trainer.d_steps=2", "trainer.micro_batch=8"], 3, True),
    # DCGAN on digits: BatchNorm in G, whose statistics each rank keeps and the trainer averages; with
    # the moving average of G (its BatchNorm buffers copied from each rank's G), spectral norm in D
    # (power-iteration vectors as buffers), a D learning rate of its own, and ADA, whose p both ranks
    # move together (one all-reduce of r_t per interval; ADA_STEP below), in rounds of 4 (ADA observes
    # the whole batch once, after the last round)
    "nsgan_digits_ema_sn_ada": (["+experiment=nsgan", "model.generator.width=8", "model.discriminator.width=8",
                                 "trainer.batch_size=8", "trainer.sample_every=2", "trainer.ema.decay=0.9",
                                 "model.discriminator.spectral_norm=true", "optimizer.discriminator.lr=4e-4",
                                 "augment=ada", "augment.interval=1", "augment.initial_p=0.5", "augment.target=0",
                                 "augment.speed_images=1000", "trainer.micro_batch=4"], 3, False),
    # CycleGAN on the embedded digit pair: four networks, image pools, instance norm
    "cyclegan_digits": (["+experiment=cyclegan", "trainer.batch_size=4", "trainer.grid_size=4", "model.generator.width=8",
                         "model.generator.blocks=1", "model.generator.downsample=1", "model.discriminator.width=8",
                         "trainer.lr_decay=none", "eval.num_samples=16"], 3, False),
}

# ADA's p moves by sign(r_t - target) x (images both ranks saw in the interval) / speed_images: 2 x 8 / 1000
ADA_STEP = 2 * 8 / 1000


def interrupt_when_logging(proc: subprocess.Popen, cwd: Path, name: str) -> None:
    """Ctrl-C the launcher once the run has logged a few iterations."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        logged = list((cwd / "outputs" / name).glob("*/metrics.jsonl"))
        if logged and len(list(read_metrics(logged[0]))) >= 2:
            proc.send_signal(signal.SIGINT)
            return
        time.sleep(0.2)
    raise AssertionError("the two-process run never logged: " + finish(proc)[1][-3000:])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_two_processes_train_one_run(tmp_path, task):
    overrides, steps, interrupt = TASKS[task]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    common = [*TINY, *overrides, f"name={task}", "trainer.log_every=1", "eval.every=0"]
    if interrupt:
        first = launch(common + ["trainer.steps=100000"], tmp_path, tmp)
        interrupt_when_logging(first, tmp_path, task)
        code, out = finish(first)
        run_dir = only_run_dir(tmp_path, task)
        stopped = json.loads((run_dir / "summary.json").read_text())
        assert stopped["status"] == "interrupted", out[-3000:]
        assert stopped["error"] is None  # one clean stop: the launcher's echo of Ctrl-C did not cut it short
        at = stopped["step"]
        assert load_checkpoint(run_dir / "checkpoints" / "last")[1]["step"] == at
        final = at + steps
        code, out = finish(launch(common + [f"trainer.steps={final}", "trainer.resume=auto"], tmp_path, tmp))
        assert code == 0, out[-3000:]
        assert only_run_dir(tmp_path, task) == run_dir  # the same run dir, continued from the checkpoint
        assert f"at step {at}." in out
    else:
        final = steps
        code, out = finish(launch(common + [f"trainer.steps={steps}"], tmp_path, tmp))
        assert code == 0, out[-3000:]
        run_dir = only_run_dir(tmp_path, task)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == final
    # two processes really ran: two ranks' fingerprints, two ranks' RNG streams, and they differ
    assert summary["num_processes"] == 2
    assert len(summary["replicas"]["sha256"]) == 2
    state, meta = load_checkpoint(run_dir / "checkpoints" / "last")
    assert meta["step"] == final and state["num_processes"] == 2 and len(state["rng"]) == 2
    assert not state["rng"][0]["data"].equal(state["rng"][1]["data"]), "both ranks drew the same data"
    # DDP kept the replicas in step: parameters and (averaged) buffers bit-identical on both ranks,
    # G's moving average included where there is one
    ema = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())["trainer"]["ema"]["decay"] > 0
    assert ("generator_ema" in state["modules"]) == ema
    assert summary["replicas"]["in_sync"] is True
    assert summary["replicas"]["sha256"][0] == summary["replicas"]["sha256"][1]
    # every step logged once, by the main process only, averaged over both ranks
    steps_logged = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/d_loss" in r]
    assert steps_logged == list(range(1, final + 1))
    if "augment=ada" in overrides:
        # p moved by whole steps of both ranks' images (a step of one rank's, or ranks that disagree, lands between)
        p = [r["train/augment_p"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/augment_p" in r]
        moves = [(b - a) / ADA_STEP for a, b in zip([0.5] + p, p)]
        assert len(p) == final and any(abs(m) > 0.5 for m in moves), p
        assert all(abs(abs(m) - round(abs(m))) < 1e-4 and round(abs(m)) <= 1 for m in moves), (p, moves)
    # ranks > 0 wrote nothing: no stray run dirs, no scratch dirs left behind
    assert not list(tmp.glob("gan_rank*"))
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == [task]


def test_two_process_cyclegan_resume_gives_every_rank_its_own_pools_back(tmp_path, caplog):
    """CycleGAN's image pools and kept batch belong to each rank: a two-process run resumed from its
    step-2 checkpoint ends at step 4 with the networks and both ranks' pools of 4 steps straight; the
    same checkpoint resumed by one process warns once and restarts the pools empty.

    Two launches: the straight run evaluates at steps 2 and 4 with `eval/identity_error` (doing
    nothing: the same value every time) as the best metric, so its checkpoints/best is its step-2
    state, written as a stopped run's checkpoint is; a second launch resumes from it."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    common = [*TINY, *TASKS["cyclegan_digits"][0], "task.pool_size=6", "seed=3", "name=cyclegan_pools",
              "trainer.log_every=1", "trainer.sample_every=0", "trainer.checkpoint_every=0", "trainer.steps=4",
              "eval.every=2", "eval.best_metric=eval/identity_error", "eval.best_mode=min"]

    def two_processes(run_dir: str, *extra: str) -> dict:
        code, out = finish(launch([*common, f"hydra.run.dir={run_dir}", *extra], tmp_path, tmp))
        assert code == 0, out[-3000:]
        return load_checkpoint(tmp_path / run_dir / "checkpoints" / "last")[0]

    straight = two_processes("straight")
    at_two = tmp_path / "straight" / "checkpoints" / "best"
    stopped = load_checkpoint(at_two)[0]
    assert stopped["step"] == 2 and len(stopped["task_processes"]) == 2
    ranks = stopped["task_processes"]
    assert not torch.equal(ranks[0]["pool_a"]["images"], ranks[1]["pool_a"]["images"])  # each rank's own fakes
    resumed = two_processes("resumed", f"trainer.resume={at_two}")
    assert resumed["step"] == straight["step"] == 4
    for net, weights in straight["modules"].items():
        for k, v in weights.items():
            assert torch.equal(v, resumed["modules"][net][k]), (net, k)
    for rank, (want, got) in enumerate(zip(straight["task_processes"], resumed["task_processes"])):
        for pool in ("pool_a", "pool_b"):
            assert len(want[pool]["images"]) == 6, (rank, pool)
            assert torch.equal(want[pool]["images"], got[pool]["images"]), (rank, pool)
            assert want[pool]["rng"] == got[pool]["rng"], (rank, pool)  # the pool's own generator
        assert all(torch.equal(want["kept"][k], got["kept"][k]) for k in want["kept"]), rank

    # one process resuming the two-process checkpoint: one warning, pools refilled from empty
    caplog.set_level("WARNING")
    train(tmp_path / "single", [*common, "trainer.steps=3", f"trainer.resume={at_two}", "eval.every=0"])
    warned = [r.getMessage() for r in caplog.records if "image pools" in r.getMessage()]
    assert len(warned) == 1 and "of 2 processes and this run has 1" in warned[0]
    single = load_checkpoint(tmp_path / "single" / "checkpoints" / "last")[0]["task_processes"]
    assert len(single) == 1 and len(single[0]["pool_a"]["images"]) == 4  # one step's batch of 4, not 6 restored + 4


@pytest.mark.parametrize("env, gpus, refused", [
    ({"LOCAL_WORLD_SIZE": "2"}, 1, "started 2 processes on a machine with 1 GPU(s): use --num_processes 1"),
    ({"LOCAL_WORLD_SIZE": "2", "ACCELERATE_USE_CPU": "1"}, 1, "2 CPU processes cannot share a machine with 1 visible"),
    ({"LOCAL_WORLD_SIZE": "2"}, 2, None),                                # one process a GPU
    ({"LOCAL_WORLD_SIZE": "2", "ACCELERATE_USE_CPU": "1"}, 0, None),     # CPU processes, GPUs hidden or none
    ({}, 1, None),                                                       # one process
    ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}, 0, "without ACCELERATE_USE_CPU=1 each would train a run of its own"),
])
def test_more_processes_than_gpus_is_refused_in_one_sentence(env, gpus, refused):
    """On one H100 `accelerate launch --num_processes 2` died in a barrier with "CUDA error: invalid
    device ordinal", CPU processes (ACCELERATE_USE_CPU=1) too; now it is one sentence, up front."""
    if refused is None:
        check_gpus_for_processes(env, gpus)
        return
    with pytest.raises(ConfigError, match=re.escape(refused)) as info:
        check_gpus_for_processes(env, gpus)
    assert ("CUDA_VISIBLE_DEVICES=" in str(info.value) or "ACCELERATE_USE_CPU=1 in front" in str(info.value)) \
        and str(info.value).count(". ") == 0


def test_processes_on_a_machine_without_gpus_and_without_use_cpu_are_refused_before_any_run(tmp_path):
    """The first-time user's command: `accelerate launch --multi_gpu --num_processes 4 -m gan_platform
    trainer.steps=5` on a machine with no GPU and no ACCELERATE_USE_CPU=1 trained four separate runs
    (four progress bars, three run dirs deleted after) and exited 0. Now: one sentence, naming
    ACCELERATE_USE_CPU=1, from rank 0 only, no run dir, a non-zero exit."""
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu", "--num_processes", "4",
           "--main_process_port", str(free_port()), "-m", "gan_platform", "trainer.steps=5"]
    env = cli_env({"CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(tmp_path)})
    env.pop("ACCELERATE_USE_CPU", None)
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("gan_platform: error:")]
    assert done.returncode != 0
    assert errors == ["gan_platform: error: accelerate launch started 4 processes on a machine with no GPU, and without "
                      "ACCELERATE_USE_CPU=1 each would train a run of its own: put ACCELERATE_USE_CPU=1 in front of "
                      "accelerate launch to train one run on 4 CPU processes."]
    assert not (tmp_path / "outputs").exists() and "it/s" not in done.stderr  # nothing trained, no run dir


def test_two_processes_stop_within_about_a_second_at_the_same_iteration(tmp_path):
    """Ctrl-C with the log step far away (trainer.log_every=100000): both processes agree within about
    a second, stop at the same iteration, write one checkpoint of it and can be resumed."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    common = [*TINY, *RING, "name=stop", "trainer.log_every=100000", "trainer.checkpoint_every=0", "eval.every=0",
              "trainer.sample_every=0"]
    first = launch(common + ["trainer.steps=10000000"], tmp_path, tmp)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "outputs" / "stop").glob("*/summary.json")):
        assert time.monotonic() < deadline and first.poll() is None, finish(first)[1][-3000:]
        time.sleep(0.2)
    time.sleep(2.0)  # a few agreements between the processes have passed
    first.send_signal(signal.SIGINT)
    code, out = finish(first)  # at the old next log step, 100,000 iterations later, it would not be done
    run_dir = only_run_dir(tmp_path, "stop")
    stopped = json.loads((run_dir / "summary.json").read_text())
    at = stopped["step"]
    assert stopped["status"] == "interrupted" and stopped["error"] is None, out[-3000:]
    assert 0 < at < 100000
    assert stopped["replicas"]["in_sync"] is True  # the same iteration on both ranks
    state, meta = load_checkpoint(run_dir / "checkpoints" / "last")
    assert meta["step"] == at and len(state["rng"]) == 2  # one checkpoint, of both ranks, of that iteration
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last"]
    code, out = finish(launch(common + [f"trainer.steps={at + 2}", "trainer.resume=auto"], tmp_path, tmp))
    assert code == 0 and f"at step {at}." in out, out[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["replicas"]["in_sync"] is True
