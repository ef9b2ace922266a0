"""The adversarial objectives and D regularisers, on known inputs."""

import math

import pytest
import torch
from torch import nn

from gan_platform import losses
from gan_platform.errors import ConfigError


def grad_wrt_scores(fn, scores):
    s = torch.tensor(scores, requires_grad=True)
    fn(s).backward()
    return s.grad


def test_minimax_values_are_the_gan_value_function():
    # D(x) = sigmoid(s): with s_real = log 3 (D = 3/4) and s_fake = -log 3 (D = 1/4)
    real, fake = torch.tensor([math.log(3.0)]), torch.tensor([-math.log(3.0)])
    value = math.log(0.75) + math.log(1 - 0.25)  # E[log D(x)] + E[log(1 - D(G(z)))]
    assert losses.LOSSES["minimax"].d(real, fake).item() == pytest.approx(-value, rel=1e-6)
    # G minimises the same log(1 - D(G(z))) = log(3/4)
    assert losses.g_minimax(fake).item() == pytest.approx(math.log(0.75), rel=1e-6)
    assert losses.g_nonsaturating(fake).item() == pytest.approx(-math.log(0.25), rel=1e-6)


def test_minimax_generator_gradient_saturates_where_nonsaturating_does_not():
    # D confidently rejects the fakes: s = -6, D(G(z)) ~ 0.0025
    s = [-6.0, -6.0]
    g_minimax = grad_wrt_scores(losses.g_minimax, s)        # d/ds -softplus(s) / n = -sigmoid(s) / n
    g_ns = grad_wrt_scores(losses.g_nonsaturating, s)         # d/ds softplus(-s) / n = -sigmoid(-s) / n
    sig = 1 / (1 + math.exp(6.0))
    assert g_minimax.tolist() == pytest.approx([-sig / 2] * 2, rel=1e-5)
    assert g_ns.tolist() == pytest.approx([-(1 - sig) / 2] * 2, rel=1e-5)
    # Both push the fake score up, but the saturating one is ~400x weaker here.
    assert (g_ns / g_minimax).mean().item() == pytest.approx((1 - sig) / sig, rel=1e-4)
    assert abs(g_minimax).max() < 0.002 < 0.49 < abs(g_ns).min()
    # Where D is fooled (s = +6) it is the other way round.
    assert abs(grad_wrt_scores(losses.g_minimax, [6.0])).item() > 100 * abs(grad_wrt_scores(losses.g_nonsaturating, [6.0])).item()


def test_wasserstein_hinge_least_squares_values():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 3.0])
    assert losses.LOSSES["wasserstein"].d(real, fake).item() == pytest.approx(1.0 - 1.0)  # E f(fake) - E f(real)
    assert losses.g_wasserstein(fake).item() == pytest.approx(-1.0)
    # hinge: relu(1 - [2, 0]) = [0, 1] -> 0.5 ; relu(1 + [-1, 3]) = [0, 4] -> 2
    assert losses.LOSSES["hinge"].d(real, fake).item() == pytest.approx(2.5)
    # least squares: 0.5 * mean([1, 1]) + 0.5 * mean([1, 9]) = 0.5 + 2.5
    assert losses.LOSSES["least_squares"].d(real, fake).item() == pytest.approx(3.0)
    assert losses.g_least_squares(fake).item() == pytest.approx(0.5 * (4 + 4) / 2)


def test_wasserstein_critic_gradient_signs():
    assert grad_wrt_scores(losses.d_wasserstein_real, [1.0, 2.0]).tolist() == [-0.5, -0.5]
    assert grad_wrt_scores(losses.d_wasserstein_fake, [1.0, 2.0]).tolist() == [0.5, 0.5]


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x, *cond):
        return x.flatten(1) @ self.w


def test_gradient_penalty_is_zero_for_unit_gradient_norm_and_matches_closed_form():
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    unit = Linear([0.6, 0.8])  # ||grad|| = 1 everywhere
    assert losses.gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    steep = Linear([3.0, 4.0])  # ||grad|| = 5 everywhere -> (5 - 1)^2 = 16
    penalty = losses.gradient_penalty(steep, real, fake)
    assert penalty.item() == pytest.approx(16.0, rel=1e-5)
    penalty.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 4 * [0.6, 0.8]
    assert steep.w.grad.tolist() == pytest.approx([4.8, 6.4], rel=1e-5)
    # fp16 recipe: a scaled graph gives the same penalty
    assert losses.gradient_penalty(steep, real, fake, scale=1024.0).item() == pytest.approx(16.0, rel=1e-5)


def test_gradient_penalty_norm_is_per_sample_on_images():
    conv = nn.Conv2d(1, 1, 4, bias=False)  # 4x4 image -> one number: linear in x
    with torch.no_grad():
        conv.weight.fill_(0.25)  # ||grad|| = sqrt(16 * 0.0625) = 1
    critic = lambda x: conv(x).flatten()  # noqa: E731
    p = losses.gradient_penalty(critic, torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4))
    assert p.item() == pytest.approx(0.0, abs=1e-10)


def test_weight_clipping_bounds_every_parameter():
    net = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 1)
    losses.clip_weights(net, 0.01)
    values = torch.cat([p.flatten() for p in net.parameters()])
    assert values.abs().max().item() == pytest.approx(0.01)
    assert (values.abs() <= 0.01).all()


def test_unknown_loss_is_refused():
    with pytest.raises(ConfigError, match="choose one of hinge, least_squares, minimax"):
        losses.get_loss("vanilla")


class PackedLinear(nn.Module):
    """A linear critic on packs of `pack` consecutive samples, as PacGAN's discriminators see them."""

    def __init__(self, w, pack):
        super().__init__()
        self.w, self.pack = nn.Parameter(torch.tensor(w)), pack

    def forward(self, x, *cond):
        return x.reshape(x.shape[0] // self.pack, -1) @ self.w


def test_gradient_penalty_of_a_packed_critic_is_that_of_its_packed_input():
    u = torch.tensor([0.6, 0.8])
    critic = PackedLinear((torch.cat([u, u]) / math.sqrt(2)).tolist(), pack=2)  # ||grad|| on a pack = 1
    real, fake = torch.randn(32, 2), torch.randn(32, 2)
    assert losses.gradient_penalty(critic, real, fake, pack=2).item() == pytest.approx(0.0, abs=1e-10)
    # per unpacked sample the norm would be 1/sqrt(2): (sqrt(2) - 1)^2 = 0.1716 if packs were ignored
    steep = PackedLinear([3.0, 4.0, 0.0, 0.0], pack=2)  # norm 5 on every pack
    assert losses.gradient_penalty(steep, real, fake, pack=2, scale=256.0).item() == pytest.approx(16.0, rel=1e-5)
    with pytest.raises(ValueError, match="pass its pack size"):
        losses.gradient_penalty(critic, real, fake)


def test_gradient_penalty_of_a_packed_mlp_matches_a_loop_over_packs():
    from gan_platform.models.mlp import MLPDiscriminator

    torch.manual_seed(0)
    D = MLPDiscriminator(in_shape=[2], hidden=16, depth=2, pack=2)
    real, fake = torch.randn(12, 2), torch.randn(12, 2)
    torch.manual_seed(1)
    penalty = losses.gradient_penalty(D, real, fake, pack=2)
    penalty.backward()
    batched = [None if p.grad is None else p.grad.clone() for p in D.parameters()]  # the last bias has none
    D.zero_grad()

    torch.manual_seed(1)
    eps = torch.rand(6, 1)  # one weight per pack, drawn as the penalty draws it
    terms = []
    for j in range(6):  # each pack on its own: interpolate, score, gradient norm over the whole pack
        x_hat = (eps[j] * real[2 * j:2 * j + 2] + (1 - eps[j]) * fake[2 * j:2 * j + 2]).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
        terms.append((grad.norm() - 1) ** 2)
    looped = torch.stack(terms).mean()
    looped.backward()
    assert penalty.item() == pytest.approx(looped.item(), rel=1e-5)
    assert penalty.item() > 1e-3  # a real penalty, not a trivial zero
    compared = 0
    for g_batched, p in zip(batched, D.parameters()):
        assert (g_batched is None) == (p.grad is None)
        if g_batched is not None:
            assert torch.allclose(g_batched, p.grad, rtol=1e-4, atol=1e-7)
            compared += 1
    assert compared >= 4


def test_least_squares_keeps_lsgans_halves_and_cyclegan_weighs_g_as_its_paper():
    fake = torch.tensor([-1.0, 3.0])  # (s - 1)^2 = [4, 4]
    lsgan = losses.get_loss("least_squares")
    assert lsgan.g(None, fake).item() == pytest.approx(0.5 * 4)  # Mao et al.: 1/2 E[(D(G(z)) - 1)^2]
    cyclegan = losses.cyclegan_objective(lsgan)
    assert cyclegan.g(None, fake).item() == pytest.approx(4.0)  # Zhu et al.: E[(D(G(x)) - 1)^2]
    real = torch.tensor([2.0, 0.0])
    assert cyclegan.d(real, fake).item() == pytest.approx(lsgan.d(real, fake).item()) == pytest.approx(3.0)  # D keeps 1/2
    for name in ("minimax", "nonsaturating", "wasserstein", "hinge"):
        assert losses.cyclegan_objective(losses.get_loss(name)) == losses.get_loss(name)


def test_the_gan_tasks_critic_step_takes_the_penalty_of_its_packs():
    from helpers import TINY, compose
    from gan_platform.run import build_dataset, build_task, make_accelerator

    cfg = compose(["+experiment=toy2d_wgan_gp", "model.discriminator.pack=2", *TINY])
    acc = make_accelerator(cfg)
    task = build_task(cfg, build_dataset(cfg, acc), acc)
    real = torch.randn(16, 2)
    torch.manual_seed(5)
    with torch.no_grad():
        fake = task.generator(task.noise(16))
    expected = losses.gradient_penalty(task.discriminator, real, fake, pack=2)
    torch.manual_seed(5)  # the step draws the same noise, then the same interpolation weights
    logs = task.d_step(real, None)
    assert logs["grad_penalty"].item() == pytest.approx(expected.item(), rel=1e-5) and expected.item() > 0
# -- the relativistic pairing loss (RpGAN) and the R1 / R2 penalties ------------------------------
def softplus(v):
    return math.log1p(math.exp(v))


def test_relativistic_losses_are_softplus_of_the_paired_difference():
    rp = losses.LOSSES["relativistic"]
    real, fake = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.0])
    # D: softplus(-(D(x) - D(G(z)))) = [softplus(-1), softplus(0)]; G: [softplus(1), softplus(0)]
    assert rp.d(real, fake).item() == pytest.approx((softplus(-1) + softplus(0)) / 2, rel=1e-6)
    assert rp.g(real, fake).item() == pytest.approx((softplus(1) + softplus(0)) / 2, rel=1e-6)
    assert rp.g_uses_real and not losses.LOSSES["nonsaturating"].g_uses_real
    # Pairing: only the differences count; the same shift of every score changes nothing,
    # where the non-saturating loss does change.
    assert rp.d(real + 5, fake + 5).item() == pytest.approx(rp.d(real, fake).item(), rel=1e-6)
    ns = losses.LOSSES["nonsaturating"]
    assert abs(ns.d(real + 5, fake + 5).item() - ns.d(real, fake).item()) > 1.0
    # pairs are taken within the batch: swapping the fakes changes the loss
    assert rp.d(real, torch.tensor([0.0, 3.0])).item() != pytest.approx(rp.d(real, torch.tensor([3.0, 0.0])).item())
    # G's gradient on its scores: -sigmoid(D(x) - D(G(z))) / n
    s = torch.tensor([0.0, 0.0], requires_grad=True)
    rp.g(real, s).backward()
    assert s.grad.tolist() == pytest.approx([-1 / (1 + math.exp(-1)) / 2, -0.5 / 2], rel=1e-6)


def test_separable_objectives_ignore_real_scores_in_the_generator_loss():
    fake = torch.tensor([-6.0, 2.0])
    for name in ("minimax", "nonsaturating", "wasserstein", "hinge", "least_squares"):
        loss = losses.LOSSES[name]
        assert loss.g(None, fake).item() == loss.g(torch.tensor([9.0, 9.0]), fake).item() == loss.g_fake(fake).item()
    # the minimax and non-saturating generator losses stay two different objectives
    assert losses.LOSSES["minimax"].g(None, fake).item() != pytest.approx(losses.LOSSES["nonsaturating"].g(None, fake).item())


def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    x = torch.randn(16, 2)
    critic = Linear([3.0, 4.0])  # grad_x D = w everywhere: ||w||^2 = 25
    penalty = losses.r1_penalty(critic, x)
    assert penalty.item() == pytest.approx(25.0, rel=1e-6)
    penalty.backward()  # d/dw ||w||^2 = 2w
    assert critic.w.grad.tolist() == pytest.approx([6.0, 8.0], rel=1e-6)
    assert losses.r2_penalty(critic, torch.randn(16, 2)).item() == pytest.approx(25.0, rel=1e-6)
    assert losses.r1_penalty(critic, x, scale=1024.0).item() == pytest.approx(25.0, rel=1e-6)  # fp16 recipe


def test_r1_of_a_quadratic_critic_is_the_mean_squared_norm_of_the_data():
    x = torch.tensor([[1.0, 2.0], [0.0, 3.0], [2.0, 2.0]])
    critic = lambda v: 0.5 * v.pow(2).sum(1)  # noqa: E731 - grad_x D = x
    assert losses.r1_penalty(critic, x).item() == pytest.approx((5 + 9 + 8) / 3, rel=1e-6)
    # images: the norm is over all non-batch dimensions
    img = torch.full((4, 1, 2, 2), 0.5)
    assert losses.r1_penalty(lambda v: 0.5 * v.pow(2).flatten(1).sum(1), img).item() == pytest.approx(1.0, rel=1e-6)


def test_r1_judges_each_sample_under_its_label():
    weights = torch.tensor([[3.0, 4.0], [1.0, 0.0]])  # ||w_0||^2 = 25, ||w_1||^2 = 1
    critic = lambda v, c: (v * weights[c]).sum(1)  # noqa: E731
    labels = torch.tensor([0, 1, 1, 1])
    assert losses.r1_penalty(critic, torch.randn(4, 2), labels).item() == pytest.approx((25 + 3) / 4, rel=1e-6)


def test_a_real_sample_with_a_wrong_label_is_rejected_as_a_fake():
    real, wrong = torch.tensor([2.0, 1.0]), torch.tensor([0.0, 3.0])
    ns, rp = losses.LOSSES["nonsaturating"], losses.LOSSES["relativistic"]
    assert ns.d_wrong_label(real, wrong).item() == pytest.approx((softplus(0) + softplus(3)) / 2, rel=1e-6)
    # pairing: the same sample under its true label against it under a wrong one
    assert rp.d_wrong_label(real, wrong).item() == pytest.approx((softplus(-2) + softplus(2)) / 2, rel=1e-6)
