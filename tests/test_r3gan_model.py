"""R3GAN's networks (models/r3gan.py) proven by the paper's properties: every residual block the
identity at initialisation with fix-up's variance scaling, no normalisation layer, the parameter
counts of the paper's Table 9, the bilinear resampling filter, the class used by G and D, and bad
stage settings refused in one sentence. Training through the platform: tests/test_r3gan_training.py."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_platform.errors import ConfigError
from gan_platform.models.r3gan import R3GANDiscriminator, R3GANGenerator
from gan_platform.models.r3gan_blocks import LEAKY_GAIN, ResidualBlock
from gan_platform.models.resample import Downsample2x, Upsample2x, lowpass_kernel
from gan_platform.tasks.speed import judges_samples_alone

SMALL = {"widths": [16, 16, 8, 8], "blocks": [1, 2, 1, 2], "cardinality": [2, 4, 2, 1]}  # 32 x 32 ... 4 x 4


def networks(side: int = 32, num_classes: int = 10, conditioning: str = "projection", **options):
    torch.manual_seed(0)
    G = R3GANGenerator((3, side, side), z_dim=16, num_classes=num_classes, **SMALL)
    D = R3GANDiscriminator((3, side, side), num_classes=num_classes, conditioning=conditioning, **SMALL, **options)
    return G, D


def residual_blocks(module: nn.Module) -> list[tuple[ResidualBlock, int, int]]:
    """Every residual block with the width and side of its stage."""
    found = []
    for stage, side in zip(module.stages, (4, 8, 16, 32) if isinstance(module, R3GANGenerator) else (32, 16, 8, 4)):
        found += [(b, b.expand.in_channels, side) for b in stage if isinstance(b, ResidualBlock)]
    return found


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_every_residual_block_is_the_identity_at_initialisation(conditioning):
    """Fix-up: the last layer of every branch is zero, so each block maps x to x exactly, block by block."""
    for net in networks(conditioning=conditioning):
        blocks = residual_blocks(net)
        assert len(blocks) == sum(SMALL["blocks"]) == 6
        for block, width, side in blocks:
            x = torch.randn(3, width, side, side)
            assert torch.count_nonzero(block.branch(x)) == 0
            assert torch.equal(block(x), x)
            assert block.project.bias is None and torch.count_nonzero(block.project.weight) == 0


def test_the_other_branch_layers_are_scaled_by_the_number_of_blocks():
    """W1, W2 ~ N(0, (a L^(-1/4) / sqrt(fan_in))^2), a = sqrt(2 / 1.04), L the blocks of the network."""
    for blocks in (1, 4, 16):
        torch.manual_seed(1)
        G = R3GANGenerator((1, 8, 8), widths=64, blocks=blocks, cardinality=8)
        L = 2 * blocks  # two stages: 4 x 4 and 8 x 8
        for block, _, _ in residual_blocks(G)[:2]:
            for conv in (block.expand, block.grouped):
                fan_in = conv.weight[0].numel()  # 64 for the 1 x 1, 16 x 9 for the grouped 3 x 3 (8 groups of 128)
                want = math.sqrt(2 / (1 + 0.2**2)) * L**-0.25 / math.sqrt(fan_in)
                assert conv.weight.std().item() == pytest.approx(want, rel=0.05), (blocks, conv)
                assert torch.count_nonzero(conv.bias) == 0
    assert LEAKY_GAIN == pytest.approx(1.3868, abs=1e-4)


def test_the_networks_hold_no_normalisation_layer():
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm, nn.RMSNorm)
    for conditioning in ("projection", "concat"):
        for net in networks(conditioning=conditioning, dropout=0.1):
            layers = list(net.modules())
            assert not [m for m in layers if isinstance(m, norms)]
            assert not [m for m in layers if nn.utils.parametrize.is_parametrized(m)]  # no spectral / weight norm
            assert not [m for m in layers if m._forward_pre_hooks]  # nor the hook-based weight norm
    G, D = networks(num_classes=0)
    assert judges_samples_alone(D)  # no batch statistics: R1/R2 are each sample's own gradient


# The paper's Table 9 (Huang et al. 2024, appendix D): "G params" and "D params" in millions, and
# the settings of each column (channels, blocks and groups per resolution, highest first; z 64).
TABLE_9 = {
    "Stacked MNIST": dict(side=32, classes=0, widths=[768] * 4, groups=[96] * 4, g=20.73, d=20.68),
    "CIFAR-10": dict(side=32, classes=10, widths=[768] * 4, groups=[96] * 4, g=20.78, d=21.28),
    "FFHQ-256": dict(side=256, classes=0, widths=[96, 192, 384, 768, 768, 768, 768], groups=[12, 24, 48, 96, 96, 96, 96],
                     g=23.06, d=23.01),
    "FFHQ-64": dict(side=64, classes=0, widths=[384, 768, 768, 768, 768], groups=[48, 96, 96, 96, 96], g=22.43, d=22.38),
    "ImageNet-32": dict(side=32, classes=1000, widths=[1536] * 4, groups=[96] * 4, g=82.91, d=86.55),
    "ImageNet-64": dict(side=64, classes=1000, widths=[1536] * 5, groups=[96] * 5, g=103.57, d=107.21),
}


@pytest.mark.parametrize("column", sorted(TABLE_9))
def test_parameter_counts_are_the_papers_table_9(column):
    """Built without memory (the meta device); every count equals the table's to its two decimals,
    and so within 1%. CIFAR-10: 20.78M (G) and 21.28M (D), conditional on 10 classes."""
    spec = TABLE_9[column]
    shape = (3, spec["side"], spec["side"])
    stages = dict(widths=spec["widths"], blocks=2, cardinality=spec["groups"], expansion=2, num_classes=spec["classes"])
    with torch.device("meta"):
        G = R3GANGenerator(shape, z_dim=64, **stages)
        D = R3GANDiscriminator(shape, conditioning="projection", **stages)
    for net, want in ((G, spec["g"]), (D, spec["d"])):
        millions = sum(p.numel() for p in net.parameters()) / 1e6
        assert round(millions, 2) == want, (column, type(net).__name__, millions)
        assert abs(millions - want) <= 0.01 * want


def test_resampling_is_bilinear_and_keeps_a_constant_image():
    """The paper resamples by bilinear interpolation: the filter [1, 3, 3, 1] / 8 along each axis
    ([1, 2, 1] convolved with the factor-two box [1, 1])."""
    assert torch.equal(lowpass_kernel(), torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    up, down = Upsample2x(), Downsample2x()
    for side in (1, 2, 4, 8, 16):
        constant = torch.full((2, 3, side, side), -0.37)
        assert torch.allclose(up(constant), torch.full((2, 3, 2 * side, 2 * side), -0.37), atol=1e-6)
        if side > 1:
            assert torch.allclose(down(constant), torch.full((2, 3, side // 2, side // 2), -0.37), atol=1e-6)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    # up: exactly bilinear interpolation with half-pixel centres, borders included
    assert torch.allclose(up(x), F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), atol=1e-12)
    # down: [1, 3, 3, 1] / 8 along each axis at stride 2; inside the border the antialiased bilinear reduction
    taps = torch.tensor([1.0, 3, 3, 1], dtype=torch.float64) / 8
    rows = F.pad(x, (1, 1, 1, 1), mode="replicate").unfold(2, 4, 2).matmul(taps)  # (2, 3, 4, 10)
    assert torch.allclose(down(x), rows.unfold(3, 4, 2).matmul(taps), atol=1e-12)
    reduced = F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(down(x)[..., 1:-1, 1:-1], reduced[..., 1:-1, 1:-1], atol=1e-12)
    G, D = networks()  # three of each between the four stages, and nothing else resamples
    assert sum(isinstance(m, Upsample2x) for m in G.modules()) == 3 and not any(isinstance(m, Downsample2x) for m in G.modules())
    assert sum(isinstance(m, Downsample2x) for m in D.modules()) == 3 and not any(isinstance(m, Upsample2x) for m in D.modules())


@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_conditional_g_and_d_use_the_class(conditioning):
    G, D = networks(conditioning=conditioning)
    z = torch.randn(4, 16)
    three, seven = torch.full((4,), 3), torch.full((4,), 7)
    with torch.no_grad():
        fakes_three, fakes_seven = G(z, three), G(z, seven)
        assert fakes_three.shape == (4, 3, 32, 32)
        assert (fakes_three - fakes_seven).abs().amin(dim=(1, 2, 3)).gt(0).all()  # every sample moved, everywhere
        x = torch.randn(4, 3, 32, 32)
        assert (D(x, three) - D(x, seven)).abs().gt(1e-4).all()
        assert torch.equal(G(z, three), fakes_three)  # and the same class gives the same image
    assert (D.head.embed is not None) == (conditioning == "projection")
    assert D.extract.in_channels == 3 + (10 if conditioning == "concat" else 0)


def test_packing_dropout_and_the_diversity_feature():
    torch.manual_seed(0)
    D = R3GANDiscriminator((1, 16, 16), widths=8, blocks=1, cardinality=2, pack=2, dropout=0.5, minibatch_std=True)
    assert D.extract.in_channels == 2 and D.head.linear.in_features == 8 + 1
    assert D(torch.randn(6, 1, 16, 16)).shape == (3,)
    assert not judges_samples_alone(D)  # the diversity feature mixes the batch: two D passes, as for other networks


BAD = [
    (dict(widths=[16, 16, 8, 8], cardinality=[2, 4, 3, 1]),
     "model.generator.cardinality 3 at 8 x 8 does not divide the 16 channels of its grouped convolution "
     "(width 8 x expansion 2)"),
    (dict(widths=[16, 16, 8], cardinality=[2, 4, 2, 1]), "model.generator.widths, blocks, cardinality list 3, 4, 4 stages"),
    (dict(widths=[16, 8, 8], blocks=[1, 1, 1], cardinality=2),
     "model.generator.widths lists 3 stages, enough for images up to 16 x 16, and these are 32 x 32"),
    (dict(widths=[16, 0, 8, 8]), "model.generator.widths must hold positive whole numbers"),
    (dict(expansion=0), "model.generator.expansion must be a positive whole number, got 0."),
]


@pytest.mark.parametrize("change, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_stage_settings_are_one_sentence_before_any_layer(change, message):
    with pytest.raises(ConfigError) as e:
        R3GANGenerator((1, 32, 32), **{**SMALL, **change})
    assert message in str(e.value) and str(e.value).count(". ") == 0 and "\n" not in str(e.value)


@pytest.mark.parametrize("shape, message", [
    ((1, 24, 24), "model=r3gan needs square images whose side is a power of two of at least 4 (4, 8, 16, 32, ...); "
                  "got 24: set dataset.resolution."),
    ((1, 2, 2), "got 2: set dataset.resolution."),
    ((1, 16, 8), "model=r3gan needs square images (C, H, H)"),
    ((2,), "model=r3gan needs square images (C, H, H); this dataset gives samples of shape (2,)")])
def test_other_image_sides_are_refused_in_one_sentence(shape, message):
    for build in (R3GANGenerator, R3GANDiscriminator):
        with pytest.raises(ConfigError) as e:
            build(shape, widths=8, blocks=1, cardinality=2)
        assert message in str(e.value) and str(e.value).count(". ") == 0


def test_one_set_of_lists_serves_every_side_from_4_to_256():
    """A network for side R uses the last log2(R/4) + 1 entries of the stage lists (the conf's default: seven)."""
    lists = dict(widths=[4, 4, 8, 8, 8, 16, 16], blocks=[1, 1, 1, 1, 2, 1, 2], cardinality=[1, 2, 2, 4, 4, 8, 8])
    torch.manual_seed(0)
    for side, stages in ((4, 1), (8, 2), (32, 4), (64, 5), (256, 7)):
        G = R3GANGenerator((3, side, side), z_dim=8, num_classes=3, **lists)
        D = R3GANDiscriminator((3, side, side), num_classes=3, **lists)
        assert len(G.stages) == len(D.stages) == stages
        assert [s[-1].expand.in_channels for s in G.stages] == lists["widths"][::-1][:stages]  # 4 x 4 first
        assert len(residual_blocks_of(D)) == sum(lists["blocks"][-stages:])
        y = torch.tensor([0, 2])
        x = G(torch.randn(2, 8), y)
        assert x.shape == (2, 3, side, side) and D(x, y).shape == (2,)


def residual_blocks_of(net: nn.Module) -> list[ResidualBlock]:
    return [m for m in net.modules() if isinstance(m, ResidualBlock)]


def test_spectral_norm_is_refused_and_the_smallest_network_is_one_stage():
    with pytest.raises(ConfigError, match="spectral normalisation would divide by its zero norm: set "
                                          r"model.discriminator.spectral_norm=false") as e:
        R3GANDiscriminator((1, 16, 16), widths=8, blocks=1, cardinality=2, spectral_norm=True)
    assert str(e.value).count(". ") == 0
    G = R3GANGenerator((1, 4, 4), z_dim=8, widths=[32, 16, 8], blocks=1, cardinality=2)  # the last entry: 4 x 4
    D = R3GANDiscriminator((1, 4, 4), widths=[32, 16, 8], blocks=1, cardinality=2)
    assert len(G.stages) == len(D.stages) == 1 and G.basis.basis.shape == (8, 4, 4)
    assert D(G(torch.randn(5, 8))).shape == (5,)
