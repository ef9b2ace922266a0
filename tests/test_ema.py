"""The generator's moving average (training/ema.py): the closed form, beta, checkpoints, sampling, resume."""

from __future__ import annotations

import math
import re

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from helpers import TINY, compose, train
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.sample import load_generator
from gan_platform.training.ema import GeneratorEMA, ema_beta

EMA_OFF = {"decay": 0.0, "half_life_images": None, "rampup": None, "raw_samples": False}


class _Task:
    """What GeneratorEMA needs of a task: modules, generator names, model_args, inference."""

    def __init__(self, generator: nn.Module):
        self.modules = {"generator": generator}
        self.generators = ("generator",)
        self.model_args = {"generator": {"_target_": "x"}}
        self.inference = {"generator": generator}


def test_ema_equals_the_closed_form_after_k_steps_and_copies_batchnorm_buffers():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    task = _Task(G)
    beta, k = 0.9, 5
    ema = GeneratorEMA(task, Accelerator(cpu=True), {**EMA_OFF, "decay": beta}, images_per_step=16)
    p0 = G[0].weight.detach().clone()
    seen = []
    for i in range(k):
        with torch.no_grad():
            G[0].weight.copy_(torch.randn(4, 3))  # the weights after G's step i
        G(torch.randn(8, 3))  # moves the BatchNorm statistics
        seen.append(G[0].weight.detach().clone())
        ema.update(i)
    closed = beta**k * p0 + sum((1 - beta) * beta ** (k - 1 - i) * p for i, p in enumerate(seen))
    average = task.modules["generator_ema"]
    torch.testing.assert_close(average[0].weight, closed, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(average[0].weight, seen[-1], atol=1e-3)  # an average, not a copy
    for name in ("running_mean", "running_var", "num_batches_tracked"):  # buffers: copied from G
        assert torch.equal(getattr(average[1], name), getattr(G[1], name)), name
    assert int(average[1].num_batches_tracked) == k
    assert task.inference["generator"] is average and task.model_args["generator_ema"] == {"_target_": "x"}
    assert not any(p.requires_grad for p in average.parameters())


def test_beta_from_a_half_life_in_images_and_the_rampup():
    # a decay alone is the factor itself
    assert ema_beta(0.999, None, None, 64, 10**6) == 0.999
    # half-life: after half_life / images_per_step updates the old weights weigh one half
    beta = ema_beta(0.0, 10_000, None, 64, 10**6)
    assert beta ** (10_000 / 64) == pytest.approx(0.5)
    # rampup: the half-life is at most rampup * images seen; at the start the average copies G
    assert ema_beta(0.0, 10_000, 0.05, 64, 0) == 0.0
    assert ema_beta(0.0, 10_000, 0.05, 64, 64_000) == pytest.approx(0.5 ** (64 / 3200))
    assert ema_beta(0.0, 10_000, 0.05, 64, 10**7) == pytest.approx(beta)
    # a decay with a rampup: the decay's own half-life, capped
    half_life = 64 * math.log(0.5) / math.log(0.999)
    assert ema_beta(0.999, None, 0.05, 64, 10**9) == pytest.approx(0.999)
    assert ema_beta(0.999, None, 0.05, 64, 640) == pytest.approx(0.5 ** (64 / 32))
    assert half_life > 32


@pytest.mark.parametrize("overrides", [["trainer.ema.decay=1.0"], ["trainer.ema.decay=-0.1"],
                                       ["trainer.ema.decay=0.9", "trainer.ema.half_life_images=1000"],
                                       ["trainer.ema.half_life_images=0"], ["trainer.ema.rampup=0.05"]])
def test_wrong_ema_settings_are_one_sentence(overrides):
    with pytest.raises(ConfigError, match="trainer.ema") as e:
        validate(compose(["+experiment=none", *overrides]))  # the groups' defaults: no average
    assert not re.search(r"\.\s+[A-Z]", str(e.value))  # one sentence


RING_BN = TINY + ["+experiment=none", "dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
                  "model.generator.batch_norm=true", "seed=3", "trainer.log_every=3", "trainer.sample_every=6",
                  "trainer.checkpoint_every=0", "eval.every=0", "eval.num_samples=200"]


@pytest.mark.slow
def test_ema_and_spectral_norm_run_saves_the_average_samples_from_it_and_resumes_bit_for_bit(tmp_path):
    """Stop at 6, resume to 12 with EMA (BatchNorm in G) and spectral norm in D: every network,
    the average and the power-iteration vectors included, equals 12 straight steps."""
    common = RING_BN + ["trainer.ema.decay=0.8", "model.discriminator.spectral_norm=true",
                        "optimizer.discriminator.lr=4e-4"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(straight, common + ["trainer.steps=12"])
    assert train(stopped, common + ["trainer.steps=6"])["step"] == 6
    assert train(stopped, common + ["trainer.steps=12", "trainer.resume=auto"])["step"] == 12
    a, _ = load_checkpoint(straight / "checkpoints" / "last")
    b, _ = load_checkpoint(stopped / "checkpoints" / "last")
    assert set(a["modules"]) == {"generator", "discriminator", "generator_ema"}
    assert a["model_args"]["generator_ema"] == a["model_args"]["generator"]
    assert any(k.endswith("._u") for k in a["modules"]["discriminator"])
    for net in a["modules"]:
        for k in a["modules"][net]:
            assert torch.equal(a["modules"][net][k], b["modules"][net][k]), (net, k)
    # the average moved away from G, and the sample grids are drawn by it
    ema, raw = a["modules"]["generator_ema"], a["modules"]["generator"]
    assert not torch.equal(ema["out.weight"], raw["out.weight"])
    assert torch.equal(ema["body.1.running_mean"], raw["body.1.running_mean"])
    averaged, plain = load_generator(straight), load_generator(straight, raw=True)
    z = torch.randn(1000, 16, generator=torch.Generator().manual_seed(3 + 12345))  # the trainer's fixed grid noise
    grid = torch.load(straight / "samples" / "step_000012.pt")
    torch.testing.assert_close(grid["samples"], averaged.generator(z))
    assert (grid["samples"] - plain.generator(z)).abs().mean() > 1e-4
    x_avg, x_raw = averaged.sample(64, seed=1), plain.sample(64, seed=1)
    assert (x_avg - x_raw).abs().mean() > 1e-4  # gan_platform.sample takes the average unless --raw-generator


@pytest.mark.slow
def test_raw_samples_evaluates_the_raw_generator_and_ema_never_changes_training(tmp_path):
    common = RING_BN + ["trainer.steps=6", "trainer.ema.decay=0.8"]
    train(tmp_path / "ema", common)
    train(tmp_path / "raw", common + ["trainer.ema.raw_samples=true"])
    train(tmp_path / "off", RING_BN + ["trainer.steps=6"])
    states = {k: load_checkpoint(tmp_path / k / "checkpoints" / "last")[0]["modules"] for k in ("ema", "raw", "off")}
    for net in ("generator", "discriminator"):
        for k in states["off"][net]:
            assert torch.equal(states["off"][net][k], states["ema"][net][k]), (net, k)
    assert "generator_ema" not in states["off"] and "generator_ema" in states["raw"]
    import json

    fid = {k: json.loads((tmp_path / k / "summary.json").read_text())["final"]["eval/fid"] for k in ("ema", "raw", "off")}
    assert fid["raw"] == fid["off"] != fid["ema"]


@pytest.mark.slow
def test_sample_and_translate_use_the_average_unless_told_raw(tmp_path):
    import numpy as np
    from PIL import Image

    from gan_platform.sample import main as sample_main
    from gan_platform.translate import translate_folder

    run = tmp_path / "ring"
    train(run, RING_BN + ["trainer.steps=6", "trainer.ema.decay=0.8"])
    for name, extra in (("avg", []), ("raw", ["--raw-generator"])):
        sample_main([str(run), "--n", "32", "--out", str(tmp_path / f"{name}.png"), "--raw", str(tmp_path / f"{name}.pt"), *extra])
    got = {k: torch.load(tmp_path / f"{k}.pt")["samples"] for k in ("avg", "raw")}
    torch.testing.assert_close(got["avg"], load_generator(run).sample(32, seed=0))
    torch.testing.assert_close(got["raw"], load_generator(run, raw=True).sample(32, seed=0))
    assert (got["avg"] - got["raw"]).abs().mean() > 1e-4

    cycle = tmp_path / "cycle"
    train(cycle, TINY + ["+experiment=cyclegan", "trainer.batch_size=4", "trainer.grid_size=4", "model.generator.width=8",
                         "model.generator.blocks=1", "model.generator.downsample=1", "model.discriminator.width=8",
                         "eval.num_samples=16", "trainer.steps=3", "trainer.sample_every=0", "trainer.ema.decay=0.5"])
    images = tmp_path / "in"
    images.mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / f"{i}.png")
    out = {}
    for name, raw in (("avg", False), ("raw", True)):
        written = translate_folder(cycle, "a2b", images, tmp_path / f"out_{name}", raw=raw)
        out[name] = np.stack([np.asarray(Image.open(p), dtype=np.float64) for p in written])
    assert np.abs(out["avg"] - out["raw"]).mean() > 0.5  # the two generators translate differently


RING_EMA = TINY + ["+experiment=none", "dataset=ring8", "model=mlp", "model.generator.hidden=16", "model.discriminator.hidden=16",
                   "trainer.log_every=1", "trainer.sample_every=0", "eval.every=0", "eval.num_samples=200", "seed=7"]


def _initial_generator(overrides: list[str], tmp_path) -> dict:
    """G as a run of `overrides` starts: built as the command line builds it, before any step."""
    from gan_platform.run import build_trainer

    trainer = build_trainer(compose(overrides), tmp_path / "initial")
    state = {k: v.clone() for k, v in trainer.acc.unwrap_model(trainer.task.modules["generator"]).state_dict().items()}
    trainer.run_dir.unlock()
    return state


def _closed_form(weights: list[dict], betas: list[float]) -> dict:
    """p_ema after len(betas) updates from p_0 = weights[0]: p_ema <- b_i p_ema + (1 - b_i) p_{i+1}."""
    average = dict(weights[0])
    for beta, after in zip(betas, weights[1:]):
        average = {k: beta * average[k] + (1 - beta) * after[k] for k in average}
    return average


@pytest.mark.slow
def test_inside_training_the_average_follows_the_rampup_betas_of_each_step(tmp_path):
    """A real 3-step run with a half-life and stylegan2-ada's ramp-up: its average equals the closed
    form with each step's own beta (0 at the start, then 0.25, then 0.5), from G after each step
    (the same runs stopped after 1 and 2 steps: a constant learning rate, the same bits)."""
    ema = ["trainer.ema.decay=0.0", "trainer.ema.half_life_images=64", "trainer.ema.rampup=0.5"]
    weights = [_initial_generator(RING_EMA + ema + ["trainer.steps=3"], tmp_path)]
    for k in (1, 2, 3):
        train(tmp_path / f"k{k}", RING_EMA + ema + [f"trainer.steps={k}"])
        weights.append(load_checkpoint(tmp_path / f"k{k}" / "checkpoints" / "last")[0]["modules"]["generator"])
    betas = [ema_beta(0.0, 64, 0.5, 16, i * 16) for i in range(3)]
    assert betas == pytest.approx([0.0, 0.25, 0.5])
    average = load_checkpoint(tmp_path / "k3" / "checkpoints" / "last")[0]["modules"]["generator_ema"]
    expected = _closed_form(weights, betas)
    for key in expected:
        torch.testing.assert_close(average[key], expected[key], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(average["body.0.weight"], weights[3]["body.0.weight"])  # an average, not G


@pytest.mark.slow
def test_on_two_processes_the_average_counts_both_ranks_images(tmp_path):
    """Two CPU processes, a half-life of 64 images, batch 16 each: beta = 0.5^(32/64) per step (one
    process would use 0.5^(16/64)). Stopped after 1 step and resumed to 2, the average is the closed form."""
    from helpers.launch import finish, launch

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ema = ["trainer.ema.decay=0.0", "trainer.ema.half_life_images=64", "name=ema2"]
    weights = [_initial_generator(RING_EMA + ema + ["trainer.steps=2"], tmp_path)]
    averages = []
    for k, extra in ((1, []), (2, ["trainer.resume=auto"])):
        code, out = finish(launch(RING_EMA + ema + [f"trainer.steps={k}", *extra], tmp_path, tmp))
        assert code == 0, out[-3000:]
        (run_dir,) = (tmp_path / "outputs" / "ema2").iterdir()
        modules = load_checkpoint(run_dir / "checkpoints" / "last")[0]["modules"]
        weights.append(modules["generator"])
        averages.append(modules["generator_ema"])
    beta = 0.5 ** (32 / 64)
    for k, average in enumerate(averages, 1):
        expected = _closed_form(weights[:k + 1], [beta] * k)
        for key in expected:
            torch.testing.assert_close(average[key], expected[key], rtol=1e-5, atol=1e-6)
