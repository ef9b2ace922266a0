"""Fused optimizers from the config, the optimizer the training step calls, replica fingerprints."""

import copy

import torch
from accelerate import Accelerator
from torch import nn

from conftest import compose
from gan_platform.training.distributed import fingerprint
from gan_platform.tasks.optim import build_optimizer, hot_optimizer


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))


def test_adam_is_fused_unless_the_config_says_otherwise_and_steps_like_the_plain_one():
    cfg = compose([])  # Adam 2e-4 (0.5, 0.999)
    fused_net, loop_net = _net(), _net()
    fused = build_optimizer(cfg.optimizer, fused_net.parameters())
    assert isinstance(fused, torch.optim.Adam) and fused.defaults["fused"] is True
    off = build_optimizer(compose(["+optimizer.fused=false"]).optimizer, _net().parameters())
    assert not off.defaults["fused"]
    loop = torch.optim.Adam(loop_net.parameters(), lr=2e-4, betas=(0.5, 0.999), foreach=False)
    x = torch.randn(32, 2)
    for _ in range(5):
        for net, opt in ((fused_net, fused), (loop_net, loop)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(fused_net.parameters(), loop_net.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    moved = sum((a - b).abs().sum().item() for a, b in zip(fused_net.parameters(), _net().parameters()))
    assert moved > 1e-3  # the optimizers did move the weights


def test_rmsprop_builds_and_steps():
    net = _net()
    opt = build_optimizer(compose(["optimizer=rmsprop"]).optimizer, net.parameters())
    assert isinstance(opt, torch.optim.RMSprop) and opt.defaults["lr"] == 5e-5
    before = [p.detach().clone() for p in net.parameters()]
    net(torch.randn(8, 2)).sum().backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, net.parameters()))


def test_the_training_step_calls_the_optimizer_itself_without_a_scaler():
    acc = Accelerator()
    net = _net()
    prepared_net, prepared = acc.prepare(net, torch.optim.Adam(net.parameters()))
    assert hot_optimizer(acc, prepared) is prepared.optimizer
    plain = torch.optim.SGD(net.parameters(), lr=0.1)
    assert hot_optimizer(acc, plain) is plain


def test_fingerprint_is_equal_for_identical_replicas_and_sees_a_buffer_change():
    a = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4))
    b = copy.deepcopy(a)
    assert fingerprint({"d": a}) == fingerprint({"d": b})
    with torch.no_grad():
        b[1].running_mean[0] += 1e-6
    assert fingerprint({"d": a}) != fingerprint({"d": b})
