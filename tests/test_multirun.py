"""Hydra's own multirun (`-m`): every job in its own dir; the submitit launcher where it is installed."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from conftest import run_cli

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
    proc = run_cli(["-m", *TINY, "loss=minimax,hinge", "seed=0,1"], cwd=tmp_path, env={"GAN_SWEEP_DIR": str(tmp_path / "mr")})
    assert proc.returncode == 0, proc.stderr
    done = jobs(tmp_path / "mr")
    assert sorted(done) == [("hinge", 0, "default"), ("hinge", 1, "default"), ("minimax", 0, "default"), ("minimax", 1, "default")]
    assert all(s["status"] == "finished" and s["step"] == 10 for s in done.values())
    # different seeds really are different runs
    assert done[("hinge", 0, "default")]["final"]["train/d_loss"] != done[("hinge", 1, "default")]["final"]["train/d_loss"]


def test_multirun_by_bare_experiment_name_and_a_bad_job_does_not_end_the_others(tmp_path):
    """`experiment=a,b` works like `+experiment=a,b` (W&B sweep parameters cannot start with '+');
    a job with a bad value fails with its one sentence and the next job still runs."""
    proc = run_cli(["-m", *TINY, "experiment=nsgan", "seed=3", "optimizer.lr=-1,0.0002"], cwd=tmp_path,
                   env={"GAN_SWEEP_DIR": str(tmp_path / "mr")})
    assert proc.returncode == 0, proc.stderr
    assert "gan_platform: error: optimizer.lr must be positive, got -1" in proc.stderr
    statuses = {json.loads((tmp_path / "mr" / job / "summary.json").read_text())["status"] for job in ("0", "1")}
    assert statuses == {"failed", "finished"}
    config = yaml.safe_load((tmp_path / "mr" / "1" / ".hydra" / "config.yaml").read_text())
    assert (config["name"], config["loss"]["name"], config["seed"], config["optimizer"]["lr"]) == ("nsgan", "nonsaturating", 3, 0.0002)


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
                    reason="hydra-submitit-launcher is not installed (pip install '.[slurm]')")
def test_submitit_launcher_runs_a_job(tmp_path):
    """The SLURM launcher's local twin: the same plugin, config and pickled job, run as a local process."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        for launcher in ("submitit_local", "submitit_slurm"):  # the plugin's own configs compose with ours
            cfg = compose("config", overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
            assert cfg.hydra.launcher._target_.startswith("hydra_plugins.hydra_submitit_launcher")
    proc = run_cli(["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", *TINY, "loss=hinge"],
                   cwd=tmp_path, env={"GAN_SWEEP_DIR": str(tmp_path / "mr")})
    assert proc.returncode == 0, proc.stderr
    assert list(jobs(tmp_path / "mr")) == [("hinge", 0, "default")]
    assert list((tmp_path / "mr" / ".submitit").rglob("*_result.pkl"))  # it went through submitit
