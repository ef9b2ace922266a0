"""`model=r3gan` through the platform: trains on the bundled digits at 32 x 32 with R3GAN's loss,
resumes bit for bit, runs on two CPU processes, is rebuilt from a checkpoint alone, is refused
before any run dir for bad stage settings, and composes in sweeps with its widths."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml

from helpers import TINY, compose, run_cli, train
from gan_platform.errors import ConfigError, UserError
from gan_platform.models.r3gan import R3GANGenerator
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.rundir import read_metrics

# R3GAN's recipe (+experiment=r3gan: RpGAN + R1 + R2, EMA of G) with model=r3gan, conditional, tiny stages
R3GAN32 = [*TINY, "+experiment=r3gan", "model=r3gan", "dataset.resolution=32", "task.conditional=true",
           "model.generator.widths=[8,8,8,4]", "model.discriminator.widths=[8,8,8,4]",
           "model.generator.blocks=1", "model.discriminator.blocks=1",
           "model.generator.cardinality=2", "model.discriminator.cardinality=2",
           "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.enabled=false"]


def _modules(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last")[0]


def test_trains_on_digits_at_32_and_a_checkpoint_alone_rebuilds_g(tmp_path):
    from gan_platform.runs.generator import load_generator

    run = tmp_path / "run"
    summary = train(run, [*R3GAN32, "trainer.steps=3", "trainer.log_every=1"])
    assert summary["status"] == "finished" and summary["step"] == 3
    records = [r for r in read_metrics(run / "metrics.jsonl") if "train/d_loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3]
    for r in records:  # RpGAN with both penalties, every step
        assert all(torch.isfinite(torch.tensor(r[k])) for k in ("train/d_loss", "train/g_loss", "train/r1_penalty", "train/r2_penalty"))
    state = _modules(run)
    args = state["model_args"]["generator"]
    assert args["_target_"] == "gan_platform.models.r3gan.R3GANGenerator"
    assert (args["out_shape"], args["widths"], args["num_classes"]) == ([1, 32, 32], [8, 8, 8, 4], 10)
    assert set(state["modules"]) == {"generator", "discriminator", "generator_ema"}
    # the checkpoint folder alone, away from its run dir and config
    alone = tmp_path / "elsewhere" / "last"
    shutil.copytree(run / "checkpoints" / "last", alone)
    trained = load_generator(alone)
    assert trained.run_dir is None and trained.network == "generator_ema" and trained.num_classes == 10
    G = trained.generator
    assert isinstance(G, R3GANGenerator) and len(G.stages) == 4
    for k, v in G.state_dict().items():
        assert torch.equal(v, state["modules"]["generator_ema"][k]), k
    labels = torch.arange(10).repeat(2)
    x = trained.sample(20, labels=labels, seed=1)
    assert x.shape == (20, 1, 32, 32) and torch.isfinite(x).all() and x.std() > 0
    assert torch.equal(x, load_generator(run).sample(20, labels=labels, seed=1))  # the run dir gives the same G


@pytest.mark.parametrize("rounds", [[], ["trainer.micro_batch=4"]], ids=["whole", "micro_batch"])
def test_resume_continues_bit_for_bit(tmp_path, rounds):
    """Stop at step 3, resume to 6: the same G, D, EMA, optimizer state and losses as 6 straight;
    with whole batches and with each batch in rounds of 4 (gradient accumulation)."""
    common = [*R3GAN32, "seed=5", "trainer.log_every=3", *rounds]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(straight, [*common, "trainer.steps=6"])
    assert train(stopped, [*common, "trainer.steps=3"])["step"] == 3
    resumed = train(stopped, [*common, "trainer.steps=6", "trainer.resume=auto"])
    assert resumed["status"] == "finished" and resumed["step"] == 6
    a, b = _modules(straight), _modules(stopped)
    for net in ("generator", "discriminator", "generator_ema"):
        for k, v in a["modules"][net].items():
            assert torch.equal(v, b["modules"][net][k]), (net, k)
    for side in ("generator", "discriminator"):
        for i, s in a["optimizers"][side]["state"].items():
            assert torch.equal(s["exp_avg_sq"], b["optimizers"][side]["state"][i]["exp_avg_sq"]), (side, i)
    la = [r for r in read_metrics(straight / "metrics.jsonl") if "train/d_loss" in r]
    lb = [r for r in read_metrics(stopped / "metrics.jsonl") if "train/d_loss" in r]
    assert [r["step"] for r in lb] == [3, 6]
    assert [(r["train/d_loss"], r["train/r1_penalty"]) for r in la] == [(r["train/d_loss"], r["train/r1_penalty"]) for r in lb]


@pytest.mark.slow
def test_two_cpu_processes_train_one_run(tmp_path):
    """`accelerate launch` with two CPU processes (tests/helpers/launch.py): one run dir,
    both ranks' replicas bit-identical at the end, each step logged once."""
    from helpers.launch import finish, launch

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code, out = finish(launch([*R3GAN32, "name=r3gan_two", "trainer.steps=3", "trainer.log_every=1",
                               "trainer.batch_size=8"], tmp_path, scratch))
    assert code == 0, out[-3000:]
    [run] = list((tmp_path / "outputs" / "r3gan_two").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["num_processes"] == 2
    assert summary["replicas"]["in_sync"] is True and len(set(summary["replicas"]["sha256"])) == 1
    state = _modules(run)
    assert state["num_processes"] == 2 and not state["rng"][0]["data"].equal(state["rng"][1]["data"])
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "train/d_loss" in r] == [1, 2, 3]


@pytest.mark.parametrize("overrides, message", [
    (["model.generator.cardinality=3"], "model.generator.cardinality 3 at 256 x 256 does not divide the 64 channels"),
    (["model.discriminator.widths=[32,32]"], "model.discriminator.widths, blocks, cardinality list 2, 7, 7 stages"),
    (["model.generator.widths=[32,32]", "model.generator.blocks=1", "model.generator.cardinality=4"],
     "model.generator.widths lists 2 stages, enough for images up to 8 x 8, and these are 16 x 16"),
    (["model.discriminator.spectral_norm=true"], "set model.discriminator.spectral_norm=false"),
])
def test_bad_stage_settings_are_refused_by_the_config_check(overrides, message):
    from gan_platform.config import validate

    with pytest.raises(ConfigError) as e:
        validate(compose(["+experiment=r3gan", "model=r3gan", *overrides]))
    assert message in str(e.value) and str(e.value).count(". ") == 0


def test_the_command_line_refuses_bad_stages_before_any_run_dir(tmp_path):
    proc = run_cli(["+experiment=r3gan", "model=r3gan", "model.generator.cardinality=3", "tracker=none"], cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "does not divide the 64 channels" in lines[0], proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_sweeps_pick_model_r3gan_and_its_widths(tmp_path):
    from gan_platform.sweep.spec import load_sweep, render_args

    def sweep(parameters, *fixed):
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump({
            "method": "grid", "metric": {"name": "eval/fid", "goal": "minimize"}, "parameters": parameters,
            "command": ["${env}", "${interpreter}", "-m", "gan_platform", "+experiment=r3gan", *fixed, "${args_no_hyphens}"]}))
        return load_sweep(path)  # composes and checks every listed value

    sweep({"model": {"values": ["dcgan", "r3gan"]}})
    widths = [64, [16, 16, 16, 32, 32, 32, 32]]  # one number for every stage, or one a stage (as the other lists)
    sweep({"model.generator.widths": {"values": widths}, "model.discriminator.widths": {"values": widths}},
          "model=r3gan", "dataset.resolution=64")
    words = render_args({"model.generator.widths": widths[1]})
    assert words == ["model.generator.widths=[16, 16, 16, 32, 32, 32, 32]"]
    assert list(compose(["+experiment=r3gan", "model=r3gan", *words]).model.generator.widths) == widths[1]
    with pytest.raises(UserError) as e:  # a width its cardinality cannot split is caught before any trial
        sweep({"model.generator.widths": {"values": [32, 18]}}, "model=r3gan", "model.generator.cardinality=8")
    assert "does not compose: model.generator.cardinality 8" in str(e.value) and "36 channels" in str(e.value)
