"""One way from config to object: every pluggable part is built from its config node's `_target_`,
so a part of one's own plugs in by config alone; and a checkpoint alone rebuilds the generator."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch

from helpers import TINY, cli_env, compose, train
from gan_platform.errors import ConfigError
from gan_platform.evaluation.features import FeatureExtractor
from gan_platform.tracking import Tracker

RING = [*TINY, "trainer.steps=4", "trainer.log_every=2", "trainer.sample_every=0", "trainer.checkpoint_every=4",
        "model.generator.hidden=16", "model.discriminator.hidden=16", "eval.every=0", "eval.num_samples=200"]


class FirstCoordinate(FeatureExtractor):
    """A feature extractor of the user's own: the first coordinate of each point."""

    name = "first_coordinate"
    num_features = 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :1]


def first_coordinate(sample_shape: tuple[int, ...], eval_cfg: Any) -> FeatureExtractor:
    return FirstCoordinate()


class Recorder(Tracker):
    """A tracker of the user's own: keeps what it is given."""

    made: list["Recorder"] = []

    def __init__(self, accelerator: Any = None, prefix: str = "", limit: int = 0):
        super().__init__(accelerator)
        self.prefix, self.limit, self.logged, self.ended = prefix, limit, [], None
        Recorder.made.append(self)

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.logged.append((step, {self.prefix + k: v for k, v in metrics.items()}))

    def finish(self, summary: dict[str, Any]) -> None:
        self.ended = summary["status"]


def test_a_feature_extractor_of_ones_own_is_chosen_by_config(tmp_path):
    summary = train(tmp_path, [*RING, "eval.features=mine", "+eval.extractors.mine._target_=test_config_targets.first_coordinate"])
    protocol = summary["protocol"]
    assert protocol["extractor"] == "first_coordinate" and protocol["num_features"] == 1
    assert summary["final"]["eval/fid"] >= 0.0
    with pytest.raises(ConfigError, match="eval.features must be one of auto, inception, digits, identity, dinov2, clip, mine, got 'yours'"):
        train(tmp_path / "bad", [*RING, "eval.features=yours", "+eval.extractors.mine._target_=test_config_targets.first_coordinate"])


def test_a_tracker_of_ones_own_is_built_from_its_target_with_its_keys(tmp_path):
    Recorder.made.clear()
    train(tmp_path, [*RING, "tracker._target_=test_config_targets.Recorder", "+tracker.prefix=mine/", "+tracker.limit=3"])
    (made,) = Recorder.made
    assert made.limit == 3 and made.ended == "finished"
    assert [step for step, _ in made.logged if "mine/train/d_loss" in _] == [2, 4]
    with pytest.raises(ConfigError, match="Unknown key 'tracker.colour'"):
        from gan_platform.config import validate

        validate(compose([*RING, "tracker._target_=test_config_targets.Recorder", "+tracker.colour=red"]))


def test_each_task_names_its_builder_and_evaluator():
    gan, cyclegan = compose([]), compose(["+experiment=cyclegan"])
    assert gan.task._target_ == "gan_platform.tasks.gan_build.build_gan_task"
    assert gan.task.evaluator._target_ == "gan_platform.evaluation.build.build_gan_evaluator"
    assert cyclegan.task._target_ == "gan_platform.tasks.cyclegan.build_cyclegan_task"
    assert cyclegan.task.evaluator._target_.endswith("cyclegan_metrics.build_cyclegan_evaluator")


LOAD_ALONE = """
import sys, torch
from gan_platform.sample import load_generator
trained = load_generator(sys.argv[1])
x = trained.sample(5, seed=3)
print(tuple(x.shape), trained.run_dir, trained.step)
loaded = sorted(m for m in sys.modules if m.startswith("gan_platform."))
assert "gan_platform.run" not in loaded and not any(m.startswith(("gan_platform.tasks", "gan_platform.config", "gan_platform.training")) for m in loaded), loaded
torch.save(x, sys.argv[2])
"""


def test_a_checkpoint_alone_rebuilds_the_generator_without_the_run_builder(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, RING)
    lone = tmp_path / "lone"
    (run_dir / "checkpoints" / "last").rename(lone)  # no run dir around it, no .hydra/config.yaml
    out = tmp_path / "x.pt"
    proc = subprocess.run([sys.executable, "-c", LOAD_ALONE, str(lone), str(out)], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[:4] == ["(5,", "2)", "None", "4"]
    samples = torch.load(out)
    assert samples.shape == (5, 2) and torch.isfinite(samples).all()
    state = torch.load(lone / "state.pt", weights_only=True)
    args = state["model_args"]["generator"]
    assert args["_target_"] == "gan_platform.models.mlp.MLPGenerator" and args["out_shape"] == [2] and args["hidden"] == 16
