"""The bundles of the modern toolkit (r3gan, dcgan_ada) and the regulariser sweep, composed and run."""

import math
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, TINY, compose, train
from gan_platform.runs.rundir import read_metrics

def bundle(name: str, tmp_path: Path) -> list[str]:
    """The overrides that select bundle `name`."""
    return [f"+experiment={name}"]


def test_r3gan_is_rpgan_with_r1_r2_and_ema(tmp_path):
    cfg = compose(bundle("r3gan", tmp_path))
    assert (cfg.name, cfg.loss.name, cfg.loss.r1_gamma, cfg.loss.r2_gamma) == ("r3gan", "relativistic", 0.1, 0.1)
    assert cfg.model.generator._target_.endswith("DCGANGenerator") and cfg.augment.name == "none"
    assert list(cfg.optimizer.betas) == [0.0, 0.99]
    assert cfg.trainer.ema.decay > 0


def test_dcgan_ada_is_dcgan_with_ada_and_ema(tmp_path):
    cfg = compose(bundle("dcgan_ada", tmp_path))
    assert (cfg.name, cfg.loss.name, cfg.augment.name, cfg.augment.target) == ("dcgan_ada", "nonsaturating", "ada", 0.6)
    assert cfg.model.discriminator._target_.endswith("DCGANDiscriminator")
    assert cfg.trainer.ema.decay > 0


@pytest.mark.slow
@pytest.mark.parametrize("name, logged, extra", [
    ("r3gan", {"train/r1_penalty", "train/r2_penalty"}, []),
    ("dcgan_ada", {"train/augment_p", "train/augment_rt"}, ["augment.interval=1", "augment.speed_images=160"])])
def test_modern_bundle_trains_a_few_steps(tmp_path, name, logged, extra):
    summary = train(tmp_path / "run", bundle(name, tmp_path) + TINY + extra + [
        "trainer.steps=3", "trainer.log_every=1", "trainer.sample_every=0", "eval.every=0", "eval.num_samples=64"])
    assert summary["status"] == "finished" and summary["step"] == 3
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "train/d_loss" in r]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert logged <= set(records[-1])
    if name == "r3gan":
        assert all(r[key] >= 0 for r in records for key in logged)
    else:  # each step moves p by sign(r_t - 0.6) x 16 images / 160 from the bundle's 0, clamped to [0, 1]
        p = 0.0
        for r in records:
            p = min(max(p + math.copysign(0.1, r["train/augment_rt"] - 0.6), 0.0), 1.0)
            assert r["train/augment_p"] == pytest.approx(p, abs=1e-6)


def test_regulariser_sweep_crosses_the_losses_and_penalties():
    raw = yaml.safe_load((ROOT / "sweeps" / "regularisers.yaml").read_text())
    params = raw["parameters"]
    assert set(params["loss"]["values"]) == {"nonsaturating", "relativistic"}
    assert 0.0 in params["loss.r1_gamma"]["values"] and max(params["loss.r1_gamma"]["values"]) > 0
    assert 0.0 in params["loss.r2_gamma"]["values"] and max(params["loss.r2_gamma"]["values"]) > 0
    assert len(params["seed"]["values"]) == 3 and "dataset=grid25" in raw["command"]
