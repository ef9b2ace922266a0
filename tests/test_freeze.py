"""FreezeD (models/freeze.py): `freeze=k` stops exactly the first k blocks of every discriminator, from
the image; the head and the later blocks train; more blocks than D has is one sentence."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from helpers import compose
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.losses import clip_weights
from gan_platform.models.biggan import BigGANDiscriminator
from gan_platform.models.cyclegan import PatchDiscriminator
from gan_platform.models.dcgan import DCGANDiscriminator
from gan_platform.models.mlp import MLPDiscriminator
from gan_platform.models.r3gan import R3GANDiscriminator
from gan_platform.models.resnet import ResNetDiscriminator
from gan_platform.models.stylegan2 import StyleGAN2Discriminator
from gan_platform.tasks.optim import build_optimizer

# Each D at a small size, and its blocks from the image as the names of the parameters they hold.
NETWORKS = {
    "mlp": (lambda k: MLPDiscriminator((2,), hidden=8, depth=3, freeze=k), (2,),
            [["body.0"], ["body.2"], ["body.4"]]),
    "dcgan": (lambda k: DCGANDiscriminator((1, 16, 16), width=4, norm="layer", freeze=k), (1, 16, 16),
              [["body.0"], ["body.3", "body.4"]]),
    "resnet": (lambda k: ResNetDiscriminator((1, 16, 16), width=8, spectral_norm=True, freeze=k), (1, 16, 16),
               [["blocks.0"], ["blocks.1"], ["blocks.2"]]),
    "biggan": (lambda k: BigGANDiscriminator((1, 16, 16), width=4, attention=8, freeze=k), (1, 16, 16),
               [["blocks.0", "blocks.1"], ["blocks.2"], ["blocks.3"]]),  # blocks.1: the self-attention after blocks.0
    "r3gan": (lambda k: R3GANDiscriminator((1, 16, 16), widths=8, blocks=1, cardinality=2, freeze=k), (1, 16, 16),
              [["extract", "stages.0"], ["stages.1"], ["stages.2"]]),
    "stylegan2": (lambda k: StyleGAN2Discriminator((1, 16, 16), channel_base=256, channel_max=16, freeze=k), (1, 16, 16),
                  [["blocks.0"], ["blocks.1"]]),
    "cyclegan": (lambda k: PatchDiscriminator((3, 16, 16), width=4, layers=2, freeze=k), (3, 16, 16),
                 [["body.0"], ["body.2"], ["body.5"]]),  # body.8, the scoring convolution, is the head
}


def _in(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("network", NETWORKS)
def test_freeze_stops_exactly_the_first_blocks(network):
    build, shape, blocks = NETWORKS[network]
    for k in range(len(blocks) + 1):
        torch.manual_seed(0)
        D = build(k)
        frozen = {n for n, p in D.named_parameters() if not p.requires_grad}
        expected = {n for n, _ in D.named_parameters() if _in(n, [p for block in blocks[:k] for p in block])}
        assert frozen == expected and (k == 0 or frozen), (k, sorted(frozen))
        assert any(p.requires_grad for p in D.parameters())  # the head always trains
    torch.manual_seed(0)
    plain = build(0).state_dict()
    torch.manual_seed(0)
    assert all(torch.equal(plain[n], v) for n, v in build(len(blocks)).state_dict().items())  # the same network


@pytest.mark.parametrize("network", NETWORKS)
def test_freeze_beyond_the_blocks_is_one_sentence(network):
    build, _, blocks = NETWORKS[network]
    with pytest.raises(ConfigError) as info:
        build(len(blocks) + 1)
    message = str(info.value)
    assert message.startswith(f"model.discriminator.freeze={len(blocks) + 1} is not a number of blocks of ")
    assert f"which has {len(blocks)}: set it between 0 (train every block) and {len(blocks)}" in message
    assert "\n" not in message


@pytest.mark.parametrize("network", NETWORKS)
def test_a_critic_step_leaves_frozen_blocks_alone(network):
    """A step of the optimizer the platform builds (and WGAN's clipping) changes every trainable
    parameter and no frozen one."""
    build, shape, blocks = NETWORKS[network]
    torch.manual_seed(1)
    D = build(len(blocks) - 1)
    before = {n: p.detach().clone() for n, p in D.named_parameters()}
    opt = build_optimizer(OmegaConf.create({"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.01}), D.parameters())
    assert len(opt.param_groups[0]["params"]) == sum(p.requires_grad for p in D.parameters())
    D(torch.randn(8, *shape)).float().square().mean().backward()
    opt.step()
    clip_weights(D, 1e-3)
    changed = {n for n, p in D.named_parameters() if not torch.equal(p, before[n])}
    frozen = {n for n, p in D.named_parameters() if not p.requires_grad}
    assert frozen and changed and not changed & frozen
    assert any(before[n].abs().max() > 1e-3 for n in frozen)  # weights that clipping would have moved


def test_a_negative_freeze_is_refused_before_any_work():
    with pytest.raises(ConfigError, match=r"model.discriminator.freeze must be zero or more, got -1"):
        validate(compose(["+experiment=nsgan", "model.discriminator.freeze=-1"]))
