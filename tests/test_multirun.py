"""Hydra's own multirun (`-m`): every job in its own dir; the submitit launcher where it is installed."""

from __future__ import annotations

import json

import pytest
import yaml

from helpers import hydra_compose, installed, run_cli
from gan_platform.config.preflight import append_experiment
from gan_platform.sweep.multirun import sweep_jobs

pytestmark = pytest.mark.slow

TINY = ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
        "trainer.steps=10", "trainer.batch_size=16", "trainer.log_every=5", "trainer.progress=false",
        "trainer.sample_every=0", "tracker=none"]


def jobs(sweep_dir):
    out = {}
    for job in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()):
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        out[(config["loss"]["name"], config["seed"], config["name"])] = json.loads((job / "summary.json").read_text())
    return out


def test_multirun_gives_every_job_its_own_run_dir(tmp_path):
    argv = ["-m", *TINY, "loss=minimax,hinge", "seed=0,1"]
    proc = run_cli(argv, cwd=tmp_path, env={"GAN_SWEEP_DIR": str(tmp_path / "mr")})
    assert proc.returncode == 0, proc.stderr
    # the pre-flight checked exactly the jobs Hydra ran, in its order
    ran = [yaml.safe_load((tmp_path / "mr" / str(n) / ".hydra" / "overrides.yaml").read_text()) for n in range(4)]
    assert ran == sweep_jobs(append_experiment(argv), hydra_compose)  # as the command line: +experiment=default added
    done = jobs(tmp_path / "mr")
    assert sorted(done) == [("hinge", 0, "default"), ("hinge", 1, "default"), ("minimax", 0, "default"), ("minimax", 1, "default")]
    assert all(s["status"] == "finished" and s["step"] == 10 for s in done.values())
    # different seeds really are different runs
    assert done[("hinge", 0, "default")]["final"]["train/d_loss"] != done[("hinge", 1, "default")]["final"]["train/d_loss"]


def test_multirun_by_bare_experiment_name_and_a_failed_job_does_not_end_the_others(tmp_path):
    """`experiment=a,b` works like `+experiment=a,b` (W&B sweep parameters cannot start with '+');
    a job that fails while training (here it diverges) does not stop the next job, and the multirun
    exits 1 with one line naming the failed job, its override and the error of its summary.json."""
    proc = run_cli(["-m", *TINY, "experiment=nsgan", "seed=3", "optimizer.lr=1e30,0.0002"], cwd=tmp_path,
                   env={"GAN_SWEEP_DIR": str(tmp_path / "mr")})
    assert proc.returncode == 1, proc.stderr
    summaries = [json.loads((tmp_path / "mr" / job / "summary.json").read_text()) for job in ("0", "1")]
    assert [(s["status"], s["step"]) for s in summaries] == [("diverged", 5), ("finished", 10)]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("gan_platform: job ")]
    assert line == (f"gan_platform: job 0 (optimizer.lr=1e+30) diverged: {summaries[0]['error']} "
                    f"(run dir: {tmp_path / 'mr' / '0'})")
    assert summaries[0]["error"].startswith("Training diverged at step 5:")
    config = yaml.safe_load((tmp_path / "mr" / "1" / ".hydra" / "config.yaml").read_text())
    assert (config["name"], config["loss"]["name"], config["seed"], config["optimizer"]["lr"]) == ("nsgan", "nonsaturating", 3, 0.0002)


@pytest.mark.parametrize("sweep,message", ids=["bad value", "unknown option", "unknown key"], argvalues=[
    (["optimizer.lr=0.0002,-1"], "optimizer.lr must be positive, got -1: set optimizer.lr to a positive number "
                                 "(in the sweep job optimizer.lr=-1)."),
    (["loss=hinge,vanilla", "seed=0,1"], "Unknown loss 'vanilla': choose one of hinge, least_squares, minimax, "
                                         "nonsaturating, relativistic, wasserstein (loss=NAME) (in the sweep job loss=vanilla seed=0)."),
    (["seed=0,1", "trainer.stepz=5"], "Unknown config key 'trainer.stepz'"),
])
def test_a_bad_value_in_a_sweep_is_refused_before_any_job_runs(tmp_path, sweep, message):
    proc = run_cli(["-m", *TINY, *sweep], cwd=tmp_path, env={"GAN_SWEEP_DIR": str(tmp_path / "mr")}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.strip()]  # one sentence, no traceback
    assert line.startswith("gan_platform: error: ") and message in line, line
    assert not (tmp_path / "mr").exists()  # not even the first, good job ran


@pytest.mark.skipif(not installed("hydra_plugins.hydra_submitit_launcher"),
                    reason="hydra-submitit-launcher is not installed (pip install '.[slurm]')")
def test_submitit_launcher_runs_a_job(tmp_path):
    """The SLURM launcher's local twin: the same plugin, config and pickled job, run as a local process."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        for launcher in ("submitit_local", "submitit_slurm"):  # the plugin's own configs compose with ours
            cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
            assert cfg.hydra.launcher._target_.startswith("hydra_plugins.hydra_submitit_launcher")
    launcher = ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"]
    # the jobs would run in other processes: the sweep is still checked here, before any is submitted
    proc = run_cli([*launcher, *TINY, "loss=hinge", "trainer.batch_size=16,-1"], cwd=tmp_path,
                   env={"GAN_SWEEP_DIR": str(tmp_path / "mr")}, timeout=120)
    assert proc.returncode == 2 and "trainer.batch_size must be positive, got -1" in proc.stderr, proc.stderr
    assert not (tmp_path / "mr").exists()
    proc = run_cli([*launcher, *TINY, "loss=hinge", "optimizer.lr=0.0002,1e30"], cwd=tmp_path,
                   env={"GAN_SWEEP_DIR": str(tmp_path / "mr")})
    assert proc.returncode == 1, proc.stderr  # the failure reported from the submitit worker
    statuses = [json.loads((tmp_path / "mr" / job / "summary.json").read_text())["status"] for job in ("0", "1")]
    assert statuses == ["finished", "diverged"]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("gan_platform: job ")]
    assert line.startswith("gan_platform: job 1 (optimizer.lr=1e+30) diverged: Training diverged at step 5")
    assert list((tmp_path / "mr" / ".submitit").rglob("*_result.pkl"))  # it went through submitit
