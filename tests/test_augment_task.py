"""Augmentation inside the GAN step: ADA's overfitting signal is right for every loss, every image D
sees is augmented (real and fake, D step and G step), R1 and R2 are taken before augmentation."""

import math

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from helpers import TINY, compose, train
from gan_platform.augment import AdaptiveAugment, NoAugment
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_platform.tasks.gan import GANTask
from gan_platform.tasks.signals import real_side
from gan_platform.losses import LOSSES


class ConstantD(nn.Module):
    """D(x) = the same score for every image: a discriminator that tells nothing apart."""

    def __init__(self, score: float):
        super().__init__()
        self.score = nn.Parameter(torch.tensor(score))

    def forward(self, x, c=None):
        return self.score.expand(len(x))


def task(D, loss, augment, lr=0.0):
    torch.manual_seed(0)
    G = DCGANGenerator([1, 8, 8], z_dim=4, width=4)
    opt = lambda m: torch.optim.SGD(m.parameters(), lr=lr)  # noqa: E731 - lr 0: the networks keep their weights
    return GANTask(Accelerator(cpu=True), G, D, opt(G), opt(D), loss=loss, z_dim=4, augment=augment, sample_shape=(1, 8, 8))


def p_after(loss, score, steps=4, batch=64):
    """ADA's p after `steps` D steps against a D that gives every image `score`, from p = 0.5."""
    ada = AdaptiveAugment(target=0.6, interval=4, speed_images=100_000, initial_p=0.5)
    t = task(ConstantD(score), loss, ada)
    real = torch.rand(batch, 1, 8, 8) * 2 - 1
    losses = [t.d_step(real, None)["d_loss"].item() for _ in range(steps)]
    return ada.p.item(), losses[-1]


STEP = 4 * 64 / 100_000  # one interval of 4 D steps of 64 images moves p by this much


@pytest.mark.parametrize("loss, says_real, says_fake, undecided", [
    ("nonsaturating", 2.0, -2.0, None), ("hinge", 0.5, -0.5, None), ("minimax", 1.0, -1.0, None),
    ("least_squares", 0.9, 0.1, 0.5)])
def test_p_rises_only_while_d_calls_real_images_real_under_its_own_loss(loss, says_real, says_fake, undecided):
    assert p_after(loss, says_real)[0] == pytest.approx(0.5 + STEP)
    assert p_after(loss, says_fake)[0] == pytest.approx(0.5 - STEP)
    if undecided is not None:  # least squares' D at 1/2 cannot tell real from fake: r_t = 0 < 0.6, p falls
        assert p_after(loss, undecided)[0] == pytest.approx(0.5 - STEP)


def test_a_constant_added_to_rpgans_d_changes_neither_its_loss_nor_p():
    """RpGAN sees only D(x) - D(G(z)): D = +1 and D = -1 are the same discriminator, with the same
    loss (log 2) and the same p (each pair undecided: r_t = 0, p falls)."""
    up, loss_up = p_after("relativistic", 1.0, steps=8, batch=8)
    down, loss_down = p_after("relativistic", -1.0, steps=8, batch=8)
    assert loss_up == loss_down == pytest.approx(math.log(2))
    assert up == down == pytest.approx(0.5 - 2 * 4 * 8 / 100_000)


def test_real_side_is_the_margin_from_each_losss_decision():
    real, fake = torch.tensor([0.7, -0.2]), torch.tensor([0.9, -1.0])
    assert torch.equal(real_side(LOSSES["nonsaturating"], real, fake), real)
    assert torch.allclose(real_side(LOSSES["least_squares"], real, fake), torch.tensor([0.2, -0.7]))
    assert torch.allclose(real_side(LOSSES["relativistic"], real, fake), torch.tensor([-0.2, 0.8]))


def test_ada_with_a_wasserstein_critic_is_refused_in_one_sentence(tmp_path):
    bad = TINY + ["+experiment=wgan_gp", "augment=ada", "trainer.steps=2"]
    with pytest.raises(ConfigError, match=r"^augment=ada steers p by .* a Wasserstein critic has no decision .*: "
                                          r"use augment=diffaug, or another loss.$"):
        train(tmp_path, bad)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    validate(compose(["+experiment=wgan_gp", "augment=diffaug"]))  # DiffAugment steers nothing: fine


# -- what D sees ------------------------------------------------------------------------------------
def recorded_task(loss):
    """A tiny DCGAN pair whose D records every batch it judges and whose G records every batch it
    makes; ADA with contrast only at p = 1 multiplies each image by its own c = 2^N(0, 0.5^2)."""
    D = DCGANDiscriminator([1, 8, 8], width=4)
    t = task(D, loss, AdaptiveAugment(initial_p=1.0, transforms=["contrast"]))
    t.phases.set_weight("r1", 1.0)
    t.phases.set_weight("r2", 1.0)
    seen, made = [], []
    D.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    t.generator.register_forward_hook(lambda module, args, out: made.append(out.detach().clone()))
    return t, seen, made


def factors(seen, raw):
    """c_i with seen_i = c_i raw_i (least squares, then checked), not all 1."""
    seen, raw = seen.flatten(1), raw.flatten(1)
    c = (seen * raw).sum(1) / raw.square().sum(1)
    assert torch.allclose(seen, c.unsqueeze(1) * raw, atol=1e-5), "not an image times a number"
    assert torch.log2(c).std() > 0.2, "not augmented"
    return c


def test_d_sees_every_image_augmented_in_both_steps_and_r1_r2_are_taken_before_augmentation():
    t, seen, made = recorded_task("relativistic")
    real = torch.rand(32, 1, 8, 8) * 2 - 1
    logs = t.d_step(real, None)
    judged, fake = torch.cat(seen), made[0]  # one pass over real and fakes (two for a D with batch statistics)
    c_real, c_fake = factors(judged[:32], real), factors(judged[32:], fake)
    # R1 (R2) = E||grad_x D(A(x))||^2 at the images before A, = E[c^2 ||grad D||^2] at what D saw
    u = judged.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(t.discriminator(u).sum(), u)
    at_seen = grad.flatten(1).square().sum(1)
    assert logs["r1_penalty"].item() == pytest.approx((c_real**2 * at_seen[:32]).mean().item(), rel=1e-4)
    assert logs["r2_penalty"].item() == pytest.approx((c_fake**2 * at_seen[32:]).mean().item(), rel=1e-4)
    assert logs["r1_penalty"].item() != pytest.approx(at_seen[:32].mean().item(), rel=0.05)
    seen.clear()
    made.clear()
    t.g_step(real, None)
    assert len(seen) == 2  # the fakes, and the real batch RpGAN pairs them with
    factors(seen[0], made[0])
    factors(seen[1], real)


def test_none_and_ada_with_no_transformation_train_alike():
    """`augment=ada augment.transforms=[]` measures r_t and changes nothing: the same weights as
    `augment=none` after a few steps (benchmarks/small_data_augment.py measures r_t that way)."""
    weights = []
    for augment in (NoAugment(), AdaptiveAugment(interval=1, transforms=[])):
        torch.manual_seed(1)
        t = task(DCGANDiscriminator([1, 8, 8], width=4), "nonsaturating", augment, lr=1e-2)
        real = torch.rand(16, 1, 8, 8) * 2 - 1
        for _ in range(3):
            t.d_step(real, None)
            t.g_step(real, None)
        weights.append(torch.cat([p.detach().flatten() for p in t.discriminator.parameters()]))
    assert torch.equal(*weights)
    assert augment.r_t.item() != 0  # it did measure
