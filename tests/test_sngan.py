"""SNGAN's ResNet networks (models/resnet.py) and the `+experiment=sngan32` preset."""

import pytest
import torch
from torch import nn

from helpers import TINY, compose, train
from gan_platform.errors import ConfigError
from gan_platform.models.resnet import Block, ResNetDiscriminator, ResNetGenerator, UpBlock


def _zero_residual(conv: nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()


def test_generator_maps_noise_to_images_in_minus_one_one_with_one_up_block_per_doubling():
    torch.manual_seed(0)
    for shape, blocks in (((3, 32, 32), 3), ((1, 16, 16), 2), ((1, 8, 8), 1), ((3, 64, 64), 4)):
        G = ResNetGenerator(shape, z_dim=16, width=8)
        assert len(G.blocks) == blocks and all(isinstance(b, UpBlock) for b in G.blocks)
        x = G(torch.randn(5, 16))
        assert x.shape == (5, *shape)
        assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    G = ResNetGenerator((1, 16, 16), z_dim=16, width=8, num_classes=10).eval()
    assert G.project.in_features == 16 + 10
    z = torch.randn(2, 16)
    assert not torch.allclose(G(z, torch.tensor([1, 1])), G(z, torch.tensor([2, 2])))


def test_discriminator_pools_to_8x8_then_two_blocks_and_scores_each_sample():
    torch.manual_seed(0)
    D = ResNetDiscriminator((3, 32, 32), width=8)
    assert [(b.first, b.down) for b in D.blocks] == [(True, True), (False, True), (False, False), (False, False)]  # SNGAN's 32 x 32 D
    seen = {}
    D.blocks.register_forward_hook(lambda m, inp, out: seen.update(h=out))
    assert D(torch.randn(6, 3, 32, 32)).shape == (6,)
    assert seen["h"].shape == (6, 8, 8, 8)
    assert [(b.first, b.down) for b in ResNetDiscriminator((1, 8, 8), width=8).blocks] == [(True, False), (False, False), (False, False)]
    assert len(ResNetDiscriminator((1, 64, 64), width=8).blocks) == 5
    packed = ResNetDiscriminator((1, 16, 16), width=8, pack=2)
    assert packed.blocks[0].conv1.in_channels == 2 and packed(torch.randn(8, 1, 16, 16)).shape == (4,)
    concat = ResNetDiscriminator((1, 16, 16), width=8, num_classes=10, conditioning="concat")
    assert concat.blocks[0].conv1.in_channels == 1 + 10 and concat.head.embed is None
    projection = ResNetDiscriminator((1, 16, 16), width=8, num_classes=10, conditioning="projection")
    assert projection.blocks[0].conv1.in_channels == 1 and projection.head.embed is not None
    x = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        projection.head.embed.weight.normal_()
    assert not torch.allclose(projection(x, torch.tensor([0, 0, 0])), projection(x, torch.tensor([5, 5, 5])))


def test_blocks_are_residual_path_plus_shortcut():
    """With the residual path's last convolution zeroed, each block is its shortcut alone."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    up = UpBlock(4, 6)
    _zero_residual(up.conv2)
    assert torch.allclose(up(x), up.shortcut(nn.functional.interpolate(x, scale_factor=2)), atol=1e-6)
    first = Block(4, 6, down=True, first=True)
    _zero_residual(first.conv2)
    assert torch.allclose(first(x), first.shortcut(nn.functional.avg_pool2d(x, 2)), atol=1e-6)
    down = Block(4, 6, down=True)
    _zero_residual(down.conv2)
    assert torch.allclose(down(x), nn.functional.avg_pool2d(down.shortcut(x), 2), atol=1e-6)
    same = Block(4, 4, down=False)
    assert same.shortcut is None
    _zero_residual(same.conv2)
    assert torch.equal(same(x), x)


@pytest.mark.parametrize("shape, message", [((1, 24, 24), "model=resnet needs square images of side 8, 16, 32, 64, ...; got 24: set dataset.resolution."),
                                            ((1, 4, 4), "got 4: set dataset.resolution."),
                                            ((1, 16, 8), "model=resnet needs square images (C, H, H)")])
def test_other_image_sides_are_refused_in_one_sentence(shape, message):
    for build in (lambda: ResNetGenerator(shape, width=8), lambda: ResNetDiscriminator(shape, width=8)):
        with pytest.raises(ConfigError) as e:
            build()
        assert message in str(e.value) and str(e.value).count(". ") == 0


def test_sngan32_is_the_papers_setting():
    from gan_platform.config import validate

    cfg = compose(["+experiment=sngan32"])
    validate(cfg)
    assert (cfg.name, cfg.loss.name, cfg.dataset.resolution, cfg.trainer.d_steps, cfg.trainer.batch_size) == ("sngan32", "hinge", 32, 5, 64)
    assert cfg.optimizer.lr == 2e-4 and list(cfg.optimizer.betas) == [0.0, 0.9]
    assert cfg.model.generator._target_.endswith("ResNetGenerator") and cfg.model.discriminator._target_.endswith("ResNetDiscriminator")
    assert (cfg.model.z_dim, cfg.model.generator.width, cfg.model.discriminator.width) == (128, 256, 128)
    assert cfg.model.discriminator.spectral_norm is True


def test_sngan32_trains_and_its_checkpoint_alone_rebuilds_g(tmp_path):
    from gan_platform.runs.checkpoint import load_checkpoint
    from gan_platform.runs.generator import load_generator
    from gan_platform.runs.rundir import read_metrics
    from gan_platform.sample import main as sample_main

    run = tmp_path / "run"
    summary = train(run, ["+experiment=sngan32", *TINY, "trainer.steps=2", "trainer.log_every=1", "trainer.sample_every=0",
                          "eval.every=0", "eval.num_samples=100", "eval.features=identity",
                          "model.generator.width=8", "model.discriminator.width=8"])
    assert summary["status"] == "finished" and summary["step"] == 2
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "train/d_loss" in r] == [1, 2]
    state, _ = load_checkpoint(run / "checkpoints" / "last")
    D = state["modules"]["discriminator"]
    # every convolution and the head are spectrally normalised: 4 blocks x 2 convs, 2 shortcuts, the head
    assert sum(k.endswith("parametrizations.weight.original") for k in D) == sum(k.endswith("._u") for k in D) == 11
    assert state["model_args"]["generator"]["width"] == 8 and state["model_args"]["generator"]["out_shape"] == [1, 32, 32]
    trained = load_generator(run)
    assert isinstance(trained.generator, ResNetGenerator) and trained.z_dim == 128
    x = trained.sample(6, seed=1)
    assert x.shape == (6, 1, 32, 32) and x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert sample_main([str(run), "--n", "4", "--seed", "1", "--raw", str(tmp_path / "s.pt"), "--out", str(tmp_path / "s.png")]) == 0
    sampled = torch.load(tmp_path / "s.pt", weights_only=True)["samples"]
    # the same four latents through the same network at the same batch size: the same samples, exactly
    assert sampled.shape == (4, 1, 32, 32) and torch.equal(sampled, trained.sample(4, seed=1))
