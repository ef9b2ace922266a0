"""R1 / R2, the relativistic loss and the one-pass critic step inside the GAN step, on critics with known gradients."""

import math
from functools import partial

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from gan_platform.losses import LOSSES
from gan_platform.models.mlp import MLPDiscriminator, MLPGenerator
from gan_platform.tasks.gan import GANTask


class ConstantG(nn.Module):
    """G(z) = the same point for every z."""

    def __init__(self, point):
        super().__init__()
        self.point = nn.Parameter(torch.tensor(point))

    def forward(self, z, c=None):
        return self.point.expand(len(z), -1)


class LinearD(nn.Module):
    """D(x, c) = w_c . x: its input gradient is w_c, so R1 = R2 = E||w_c||^2."""

    def __init__(self, weights):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(weights))

    def forward(self, x, c=None):
        w = self.w[c] if c is not None else self.w[0]
        return (x * w).sum(-1)


def task(loss="nonsaturating", num_classes=0, **kw):
    acc = Accelerator(cpu=True)
    G, D = ConstantG([1.0, -1.0]), LinearD([[3.0, 4.0], [1.0, 0.0]])
    frozen = lambda m: torch.optim.SGD(m.parameters(), lr=0.0)  # noqa: E731 - the critic keeps its known weights
    return GANTask(acc, G, D, frozen(G), frozen(D), loss=loss, z_dim=2, num_classes=num_classes, **kw)


def softplus(v):
    return torch.nn.functional.softplus(torch.as_tensor(v)).mean().item()


def test_lazy_r1_and_r2_every_kth_step_scaled_by_k():
    t = task(r1_gamma=0.2, r2_gamma=0.1, reg_every=3)
    real = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    real_scores, fake_score = torch.tensor([3.0, 4.0]), 3.0 - 4.0
    plain = softplus(-real_scores) + softplus(fake_score)
    for step in range(1, 7):
        logs = t.d_step(real, None)
        if step % 3:
            assert "r1_penalty" not in logs and "r2_penalty" not in logs
            assert logs["d_loss"].item() == pytest.approx(plain, rel=1e-6)
        else:  # every third step: + 3 * gamma/2 * ||w||^2 for each penalty
            assert logs["r1_penalty"].item() == pytest.approx(25.0) and logs["r2_penalty"].item() == pytest.approx(25.0)
            assert logs["d_loss"].item() == pytest.approx(plain + 3 * 0.1 * 25 + 3 * 0.05 * 25, rel=1e-6)
    assert t.extra_state()["d_steps_done"] == 6


class PackedLinearD(nn.Module):
    """PacGAN's view: D judges packs of 2 samples as one input, D(x1, x2) = w . (x1, x2). Its input
    gradient per pack is w, so R1 = R2 = ||w||^2 over packs, whatever the samples."""

    pack = 2

    def __init__(self, weights):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(weights))

    def forward(self, x, c=None):
        return (x.reshape(len(x) // 2, -1) * self.w).sum(-1)


def test_r1_and_r2_on_packs_are_the_norm_of_each_packs_own_gradient():
    acc = Accelerator(cpu=True)
    G, D = ConstantG([1.0, -1.0]), PackedLinearD([1.0, 2.0, 3.0, 4.0])
    frozen = lambda m: torch.optim.SGD(m.parameters(), lr=0.0)  # noqa: E731
    t = GANTask(acc, G, D, frozen(G), frozen(D), loss="nonsaturating", z_dim=2, r1_gamma=1.0, r2_gamma=1.0)
    logs = t.d_step(torch.randn(6, 2), None)  # three packs of two
    assert logs["r1_penalty"].item() == pytest.approx(30.0) and logs["r2_penalty"].item() == pytest.approx(30.0)


def test_conditional_r1_uses_the_true_label():
    t = task(num_classes=2, r1_gamma=1.0)
    logs = t.d_step(torch.zeros(4, 2), torch.tensor([0, 1, 1, 1]))
    assert logs["r1_penalty"].item() == pytest.approx((25 + 1 + 1 + 1) / 4)


def test_relativistic_generator_step_pairs_each_fake_with_a_real_sample():
    t = task(loss="relativistic")
    real = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # D(x) = [3, 4]; D(G(z)) = -1
    logs = t.g_step(real, None)
    assert logs["g_loss"].item() == pytest.approx((math.log1p(math.exp(4)) + math.log1p(math.exp(5))) / 2, rel=1e-6)
    d_logs = t.d_step(real, None)
    assert d_logs["d_loss"].item() == pytest.approx(LOSSES["relativistic"].d(torch.tensor([3.0, 4.0]),
                                                                               torch.tensor([-1.0, -1.0])).item())


def _pair_of_tasks(D_factory, num_classes=0, **kw):
    """Two GAN tasks with identical G, D and optimizers: one scoring real and fakes in one D pass."""
    tasks = []
    for one_pass in (True, False):
        torch.manual_seed(0)
        G, D = MLPGenerator((2,), z_dim=4, num_classes=num_classes), D_factory()
        t = GANTask(Accelerator(cpu=True), G, D, torch.optim.SGD(G.parameters(), lr=0.1),
                    torch.optim.SGD(D.parameters(), lr=0.1), loss="nonsaturating", z_dim=4,
                    num_classes=num_classes, **kw)
        assert t.one_pass  # D judges each sample alone
        t.one_pass = one_pass
        tasks.append(t)
    return tasks


@pytest.mark.parametrize("name, factory, num_classes", [
    ("mlp", partial(MLPDiscriminator, (2,)), 0),
    ("packs of 2", partial(MLPDiscriminator, (2,), pack=2), 0),
    ("projection", partial(MLPDiscriminator, (2,), num_classes=3, conditioning="projection"), 3),
])
def test_one_d_pass_over_real_and_fakes_scores_and_steps_as_two_passes(name, factory, num_classes):
    one, two = _pair_of_tasks(factory, num_classes, r1_gamma=0.5, r2_gamma=0.5)
    real = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % 3 if num_classes else None
    for _ in range(3):
        torch.manual_seed(2)
        a = one.d_step(real, labels)
        torch.manual_seed(2)
        b = two.d_step(real, labels)
        for key in ("d_loss", "d_real", "d_fake", "r1_penalty", "r2_penalty"):
            assert a[key].item() == pytest.approx(b[key].item(), rel=1e-5, abs=1e-7), (name, key)
    for p, q in zip(one.discriminator.parameters(), two.discriminator.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6), name  # three SGD steps from the same gradients
    assert a["r1_penalty"].item() > 0 and a["r2_penalty"].item() > 0


def test_d_with_batch_statistics_keeps_one_pass_per_batch():
    from gan_platform.models.dcgan import DCGANDiscriminator
    from gan_platform.tasks.speed import judges_samples_alone

    assert judges_samples_alone(DCGANDiscriminator((1, 8, 8))) and judges_samples_alone(DCGANDiscriminator((1, 8, 8), norm="layer"))
    assert not judges_samples_alone(DCGANDiscriminator((1, 16, 16), norm="batch"))
    assert not judges_samples_alone(MLPDiscriminator((2,), minibatch_std=True))
    for D, passes in ((MLPDiscriminator((2,)), 1), (MLPDiscriminator((2,), minibatch_std=True), 2)):
        calls = []
        D.register_forward_pre_hook(lambda m, args: calls.append(len(args[0])))
        G = MLPGenerator((2,), z_dim=4)
        t = GANTask(Accelerator(cpu=True), G, D, torch.optim.SGD(G.parameters(), lr=0.1),
                    torch.optim.SGD(D.parameters(), lr=0.1), loss="nonsaturating", z_dim=4)
        t.d_step(torch.randn(8, 2), None)
        assert calls == ([16] if passes == 1 else [8, 8])
