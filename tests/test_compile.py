"""trainer.compile and trainer.channels_last (gan_platform/tasks/speed.py): a compiled run trains,
checkpoints under the eager names and resumes exactly; a gradient penalty is refused in one
sentence; channels-last convolutions train to the eager result up to float rounding."""

from __future__ import annotations

import pytest
import torch

from helpers import TINY, compose, train
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.runs.checkpoint import load_checkpoint

RING = [*TINY, "+experiment=none", "dataset=ring8", "model=mlp", "model.generator.hidden=16", "model.discriminator.hidden=16",
        "trainer.log_every=2", "trainer.sample_every=0", "trainer.checkpoint_every=2", "eval.every=0",
        "eval.num_samples=200", "seed=5"]
# aot_eager traces and runs the same graphs as inductor without generating C++ (fast enough for a test)
COMPILED = ["trainer.compile=true", "trainer.compile_backend=aot_eager"]


def modules(run_dir):
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    return state["modules"]


@pytest.mark.slow
def test_a_compiled_run_trains_and_resumes_exactly(tmp_path):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    straight = train(tmp_path / "straight", [*RING, *COMPILED, "trainer.steps=4"])
    # compiled for real: dynamo captured the networks' graphs (at least G's and D's forwards)
    assert counters["stats"]["unique_graphs"] >= 2 and counters["frames"]["ok"] >= 2, dict(counters["stats"])
    train(tmp_path / "stopped", [*RING, *COMPILED, "trainer.steps=2"])
    resumed = train(tmp_path / "stopped", [*RING, *COMPILED, "trainer.steps=4", "trainer.resume=auto"])
    assert straight["status"] == resumed["status"] == "finished"
    a, b = modules(tmp_path / "straight"), modules(tmp_path / "stopped")
    assert set(a["generator"]) == set(modules_of_eager(tmp_path)["generator"])  # no _orig_mod. prefix
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)


def modules_of_eager(tmp_path):
    train(tmp_path / "eager", [*RING, "trainer.steps=2"])
    return modules(tmp_path / "eager")


def test_compile_with_a_gradient_penalty_is_one_sentence():
    with pytest.raises(ConfigError, match="trainer.compile=true cannot train with loss.gradient_penalty > 0"):
        validate(compose(["+experiment=wgan_gp", "trainer.compile=true"]))
    with pytest.raises(ConfigError, match="trainer.compile_mode must be one of default, reduce-overhead"):
        validate(compose(["trainer.compile_mode=fastest"]))
    validate(compose(["+experiment=wgan", "trainer.compile=true", "trainer.compile_mode=reduce-overhead"]))


def test_channels_last_convolutions_train_like_eager(tmp_path):
    common = [*TINY, "+experiment=nsgan", "model.generator.width=8", "model.discriminator.width=8", "model.z_dim=8",
              "trainer.steps=2", "trainer.sample_every=0", "trainer.checkpoint_every=2", "eval.every=0",
              "eval.num_samples=50", "eval.features=identity", "seed=2"]
    train(tmp_path / "eager", common)
    train(tmp_path / "nhwc", [*common, "trainer.channels_last=true"])
    a, b = modules(tmp_path / "eager"), modules(tmp_path / "nhwc")
    for net in a:
        for key in a[net]:
            torch.testing.assert_close(a[net][key].float(), b[net][key].float(), rtol=1e-4, atol=1e-5)
