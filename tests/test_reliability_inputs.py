"""Bad input caught before any work, one sentence each: out-of-range values, a conditional GAN on
unlabelled data, more processes than samples. (The command line's own table is in test_cli.py.)"""

import pytest
import torch
from accelerate import Accelerator

from helpers import compose
from gan_platform.config import validate
from gan_platform.data.base import TensorDataset
from gan_platform.errors import ConfigError
from gan_platform.tasks.gan_build import build_gan_task

OUT_OF_RANGE = [
    (["trainer.steps=-5"], "trainer.steps must be positive, got -5"),
    (["trainer.batch_size=0"], "trainer.batch_size must be positive, got 0"),
    (["trainer.d_steps=-1"], "trainer.d_steps must be positive"),
    (["trainer.g_steps=0"], "trainer.g_steps must be positive"),
    (["trainer.log_every=0"], "trainer.log_every must be positive"),
    (["trainer.checkpoint_every=-10"], "trainer.checkpoint_every must be zero or more"),
    (["eval.early_stop_patience=-1"], "eval.early_stop_patience must be zero or more"),
    (["optimizer.lr=-inf"], "optimizer.lr must be a finite number"),
    (["optimizer.lr=1e-3", "optimizer.betas=[0.5,1.2]"], "Invalid beta parameter at index 1: 1.2"),
    (["+experiment=wgan", "loss.weight_clip=-0.01"], "loss.weight_clip must be zero or more, got -0.01"),
    (["+experiment=wgan", "loss.weight_clip=inf"], "loss.weight_clip must be a finite number"),
    (["+experiment=wgan_gp", "loss.gradient_penalty=nan"], "loss.gradient_penalty must be a finite number"),
    (["model.z_dim=-3"], "model.z_dim must be positive"),
    (["trainer.lr_decay_start=1.5"], "trainer.lr_decay_start is a fraction of the steps in [0, 1]"),
    (["model.discriminator.pack=4", "trainer.batch_size=10"], "trainer.batch_size=10 is not a multiple of model.discriminator.pack=4"),
    (["seed=4294967296"], "seed must be in [0, 2**32)"),
]


@pytest.mark.parametrize("args,message", OUT_OF_RANGE, ids=[" ".join(a) for a, _ in OUT_OF_RANGE])
def test_out_of_range_values_are_one_sentence(args, message):
    with pytest.raises(ConfigError) as info:
        validate(compose(args))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_valid_edges_pass():
    validate(compose(["trainer.checkpoint_every=0", "eval.early_stop_patience=0", "seed=0",
                      "model.discriminator.pack=4", "trainer.batch_size=8", "trainer.lr_decay_start=1.0"]))


def _points(labels: bool) -> TensorDataset:
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    y = torch.arange(32) % 4 if labels else None
    return TensorDataset("points", x, y, num_classes=4 if labels else None, kind="points")


def test_a_conditional_gan_on_unlabelled_data_is_refused():
    cfg = compose(["task.conditional=true", "task.mismatch_weight=1.0"])
    acc = Accelerator(cpu=True)
    with pytest.raises(ConfigError, match="A conditional GAN needs labelled data, and dataset 'points' has no labels"):
        build_gan_task(cfg, _points(labels=False), acc)
    assert build_gan_task(cfg, _points(labels=True), acc).num_classes == 4


def test_more_processes_than_samples_is_refused():
    """trainer.batch_size is per process, so a batch never has fewer samples than processes; the
    data itself is split across processes, and must hold at least one sample for each."""
    tiny = TensorDataset("three", torch.zeros(3, 1, 4, 4, dtype=torch.uint8), kind="images")
    with pytest.raises(ConfigError, match="Dataset 'three' has 3 samples, fewer than the 4 processes"):
        tiny.shard(0, 4)
    shard = tiny.shard(2, 3)
    x, _ = shard.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 4, 4)


@pytest.mark.parametrize("args,culprit", [
    (["+experiment=wgan_gp", "model.discriminator.minibatch_std=true"], "model.discriminator.minibatch_std=true"),
    (["+experiment=wgan_gp", "model.discriminator.norm=batch"], "model.discriminator.norm=batch"),
    (["+experiment=toy2d_wgan_gp", "model.discriminator.minibatch_std=true"], "model.discriminator.minibatch_std=true"),
])
def test_a_gradient_penalty_on_a_critic_that_mixes_the_batch_is_refused(args, culprit):
    with pytest.raises(ConfigError) as info:
        validate(compose(args))
    message = str(info.value)
    assert message.startswith("loss.gradient_penalty needs a critic that judges each sample on its own")
    assert culprit in message and "\n" not in message


@pytest.mark.parametrize("args,penalty", [
    (["+experiment=r3gan", "model.discriminator.norm=batch"], "loss.r1_gamma"),
    (["+experiment=r3gan", "loss.r1_gamma=0", "model.discriminator.norm=batch"], "loss.r2_gamma"),
])
def test_r1_or_r2_on_a_critic_with_batch_statistics_is_refused(args, penalty):
    """R1/R2 are each input's own gradient norm: BatchNorm in D mixes other samples' terms in."""
    with pytest.raises(ConfigError) as info:
        validate(compose(args))
    assert str(info.value).startswith(f"{penalty} needs a critic that judges each sample on its own")
    assert "model.discriminator.norm=batch" in str(info.value) and "\n" not in str(info.value)


def test_a_gradient_penalty_with_packing_or_a_per_sample_norm_is_accepted():
    validate(compose(["+experiment=toy2d_wgan_gp", "model.discriminator.pack=2"]))
    validate(compose(["+experiment=wgan_gp", "model.discriminator.norm=layer"]))
    validate(compose(["+experiment=wgan", "model.discriminator.minibatch_std=true"]))  # clipping: no penalty
