"""Sweep YAMLs: the shipped files pass W&B's schema and compose; bad files are one sentence; a trial
started by the real `wandb agent` code runs with the overrides and run dir the sweep implies."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, run_cli

SWEEP_FILES = sorted((ROOT / "sweeps").glob("*.yaml"))


def test_the_sweeps_the_platform_promises_are_there():
    names = {p.stem for p in SWEEP_FILES}
    assert {"losses", "wgan", "cgan"} <= names
    losses = yaml.safe_load((ROOT / "sweeps" / "losses.yaml").read_text())
    assert losses["method"] == "grid" and losses["metric"] == {"name": "collapse/modes", "goal": "maximize"}
    assert set(losses["parameters"]["experiment"]["values"]) == {"gan", "nsgan", "wgan", "wgan_gp", "hinge", "lsgan"}
    assert "dataset=ring8" in losses["command"] and len(losses["parameters"]["seed"]["values"]) >= 2
    wgan = yaml.safe_load((ROOT / "sweeps" / "wgan.yaml").read_text())
    assert wgan["method"] == "bayes" and wgan["metric"]["name"] == "eval/fid"
    assert wgan["early_terminate"]["type"] == "hyperband"
    assert {"optimizer.lr", "trainer.d_steps", "loss.weight_clip"} <= set(wgan["parameters"])
    cgan = yaml.safe_load((ROOT / "sweeps" / "cgan.yaml").read_text())
    assert "+experiment=cgan" in cgan["command"] and "task.mismatch_weight" in cgan["parameters"]


@pytest.mark.parametrize("path", SWEEP_FILES, ids=[p.name for p in SWEEP_FILES])
def test_sweep_file_is_valid_and_composes(path):
    from gan_platform.sweep.spec import engine, load_sweep, trial_command

    raw = yaml.safe_load(path.read_text())
    assert engine().schema_violations_from_proposed_config(raw) == []
    engine().SweepConfig(raw)  # what `wandb sweep` checks, raising on a violation
    assert raw["command"][:4] == ["${env}", "${interpreter}", "-m", "gan_platform"] and raw["command"][-1] == "${args_no_hyphens}"
    config = load_sweep(path)  # composes the command with every listed value of every parameter
    first = engine().next_run(config, [])
    words = trial_command(config, {k: v["value"] for k, v in first.config.items()}, interpreter="python")
    assert words[:4] == ["/usr/bin/env", "python", "-m", "gan_platform"]
    assert [w for w in words[4:] if w.split("=")[0] in first.config] == [f"{k}={v['value']}" for k, v in first.config.items()]


GOOD = {"method": "grid", "metric": {"name": "train/d_loss", "goal": "minimize"},
        "parameters": {"loss": {"values": ["minimax", "hinge"]}},
        "command": ["${env}", "${interpreter}", "-m", "gan_platform", "dataset=ring8", "${args_no_hyphens}"]}
BAD = [
    ({"method": "gird"}, "is not a valid W&B sweep config: 'gird' is not one of"),
    ({"parameters": {"+experiment": {"values": ["gan"]}}}, "'+experiment' does not match"),
    ({"command": None}, "has no command"),
    ({"command": ["${env}", "${interpreter}", "-m", "gan_platform", "${args}"]}, "use ${args_no_hyphens} instead"),
    ({"command": ["${env}", "${interpreter}", "train.py", "${args_no_hyphens}"]}, "does not run `-m gan_platform`"),
    ({"command": ["${env}", "${interpreter}", "-m", "gan_platform"]}, "never passes the trial's parameters"),
    ({"method": "bayes", "metric": None, "parameters": {"optimizer.lr": {"min": 0.0001, "max": 0.01}}}, "needs a metric"),
    ({"early_terminate": {"type": "hyperband", "max_iter": 2, "eta": 3, "s": 2}}, "early_terminate section W&B cannot use"),
    ({"parameters": {"optimizer.lrr": {"values": [0.001]}}}, "Unknown config key 'optimizer.lrr'"),
    ({"parameters": {"loss": {"values": ["minimax", "vanila"]}}}, "(loss=vanila) that does not compose: Unknown loss 'vanila'"),
]


@pytest.mark.parametrize("change,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_sweep_file_is_one_sentence(tmp_path, change, message):
    from gan_platform.errors import UserError
    from gan_platform.sweep.spec import load_sweep

    config = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(UserError) as e:
        load_sweep(path)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_sweep_command_refuses_bad_input_with_exit_2(tmp_path):
    (tmp_path / "broken.yaml").write_text("method: grid\ncommand: [${env}, ${interpreter}]\n")
    (tmp_path / "bayes.yaml").write_text(yaml.safe_dump({**GOOD, "method": "bayes"}))
    for args, message in ((["broken.yaml"], "is not valid YAML at line 2"),
                          (["bayes.yaml"], "never runs out of trials: pass --count N"),
                          (["missing.yaml"], "Sweep file missing.yaml not found")):
        proc = run_cli(args, cwd=tmp_path, module="gan_platform.sweep", timeout=300)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_trial_started_by_the_wandb_agent_code(tmp_path, monkeypatch, agent_env):
    """wandb's own Agent turns a server's `run` command into a process; no server is needed for that
    part. The trial lands in outputs/sweeps/<sweep>/<run id> with the proposed values, and logs the
    sweep's metric under the YAML's name."""
    from wandb.wandb_agent import Agent

    from gan_platform.sweep.spec import trial_command

    sweep = {**GOOD, "command": ["${env}", "${interpreter}", "-m", "gan_platform", "dataset=ring8", "model=mlp",
                                 "model.generator.hidden=32", "model.discriminator.hidden=32", "trainer.steps=10",
                                 "trainer.batch_size=16", "trainer.log_every=5", "trainer.progress=false",
                                 "trainer.sample_every=0", "tracker=none", "${args_no_hyphens}"]}
    params = {"loss": "hinge", "optimizer.lr": 0.0005, "experiment": "nsgan"}
    agent = Agent(api=None, queue=None, sweep_id="sw33p")
    agent._sweep_command = list(sweep["command"])
    agent._command_run({"type": "run", "run_id": "r1d", "program": None,
                        "args": {k: {"value": v} for k, v in params.items()}})
    proc = agent._run_processes["r1d"]
    assert proc.wait(timeout=300) == 0
    assert proc._popen.args == trial_command(sweep, params, interpreter="python")
    run_dir = tmp_path / "outputs" / "sweeps" / "sw33p" / "r1d"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["experiment"] == "nsgan"
    assert isinstance(summary["final"][sweep["metric"]["name"]], float)
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["loss"]["name"] == "hinge" and config["optimizer"]["lr"] == 0.0005
    # what wandb.init reads in the trial to attach the run to the sweep
    assert os.environ["WANDB_RUN_ID"] == "r1d"
    written = yaml.safe_load(Path(os.environ["WANDB_SWEEP_PARAM_PATH"]).read_text())
    assert written["optimizer.lr"]["value"] == 0.0005


def test_what_a_wandb_agent_trial_adds_to_its_overrides(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from gan_platform.sweep.agent import agent_overrides

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GAN_RUN_DIR", raising=False)
    cfg = OmegaConf.create({"tracker": {"name": "none"}})
    with_mode = lambda more: OmegaConf.create({"tracker": {"name": "wandb", "mode": "offline"}})  # noqa: E731
    monkeypatch.delenv("WANDB_SWEEP_ID", raising=False)
    assert agent_overrides([], cfg, ["none", "wandb"], with_mode) == []  # not in a sweep: nothing
    monkeypatch.setenv("WANDB_SWEEP_ID", "abc")
    monkeypatch.setenv("WANDB_RUN_ID", "r9")
    assert agent_overrides(["loss=hinge"], cfg, ["none"], with_mode) == ["hydra.run.dir=outputs/sweeps/abc/r9"]
    assert agent_overrides(["loss=hinge"], cfg, ["none", "wandb"], with_mode) == [
        "hydra.run.dir=outputs/sweeps/abc/r9", "tracker=wandb", "tracker.mode=online"]
    assert agent_overrides(["tracker=none", "hydra.run.dir=x"], cfg, ["none", "wandb"], with_mode) == []
    (tmp_path / "outputs" / "sweeps" / "abc" / "r9" / "checkpoints" / "last").mkdir(parents=True)
    assert agent_overrides(["tracker.mode=offline"], cfg, ["none", "wandb"], with_mode) == [
        "hydra.run.dir=outputs/sweeps/abc/r9", "trainer.resume=auto", "tracker=wandb"]  # a restarted run resumes
