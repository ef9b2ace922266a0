"""Fused optimizers from the config, the optimizer the training step calls, replica fingerprints."""

import copy
import re

import pytest

import torch
from accelerate import Accelerator
from torch import nn

from helpers import compose
from gan_platform.training.distributed import fingerprint
from gan_platform.tasks.optim import build_optimizer, hot_optimizer


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))


def test_adam_is_fused_unless_the_config_says_otherwise_and_steps_like_the_plain_one():
    cfg = compose(["+experiment=none"])  # the groups' Adam: 2e-4 (0.5, 0.999)
    fused_net, loop_net = _net(), _net()
    fused = build_optimizer(cfg.optimizer, fused_net.parameters())
    assert isinstance(fused, torch.optim.Adam) and fused.defaults["fused"] is True
    off = build_optimizer(compose(["+experiment=none", "+optimizer.fused=false"]).optimizer, _net().parameters())
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


# -- one optimizer a side (TTUR): optimizer.generator.* / optimizer.discriminator.* -----------------
def _lrs(run_dir) -> dict:
    from gan_platform.runs.checkpoint import load_checkpoint

    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    return {side: (opt["param_groups"][0]["lr"], tuple(opt["param_groups"][0].get("betas", ())),
                   opt["param_groups"][0]["weight_decay"]) for side, opt in state["optimizers"].items()}


@pytest.mark.slow
def test_each_side_gets_its_own_settings_and_the_shared_ones_set_both(tmp_path):
    from helpers import TINY, train

    ring = TINY + ["+experiment=none", "dataset=ring8", "model.generator.hidden=16", "model.discriminator.hidden=16", "trainer.steps=2",
                   "trainer.sample_every=0", "eval.every=0"]
    train(tmp_path / "ttur", ring + ["optimizer.discriminator.lr=4e-4", "optimizer.generator.lr=1e-4",
                                     "optimizer.generator.betas=[0.0,0.99]", "optimizer.discriminator.weight_decay=0.01"])
    assert _lrs(tmp_path / "ttur") == {"generator": (1e-4, (0.0, 0.99), 0.0), "discriminator": (4e-4, (0.5, 0.999), 0.01)}
    # by network, not by the optimizers' names: every parameter of D is stepped at D's rate, every one of G at G's
    from helpers import compose
    from gan_platform.run import build_trainer

    trainer = build_trainer(compose(ring + ["optimizer.discriminator.lr=4e-4", "optimizer.generator.lr=1e-4"]),
                            tmp_path / "built")
    rate = {id(p): group["lr"] for opt in trainer.task.optimizers.values() for group in opt.param_groups for p in group["params"]}
    unwrap = trainer.acc.unwrap_model
    assert {rate[id(p)] for p in unwrap(trainer.task.modules["discriminator"]).parameters()} == {4e-4}
    assert {rate[id(p)] for p in unwrap(trainer.task.modules["generator"]).parameters()} == {1e-4}
    trainer.run_dir.unlock()
    train(tmp_path / "shared", ring + ["optimizer.lr=3e-3"])
    assert _lrs(tmp_path / "shared") == {"generator": (3e-3, (0.5, 0.999), 0.0), "discriminator": (3e-3, (0.5, 0.999), 0.0)}
    train(tmp_path / "rms", ring + ["optimizer=rmsprop", "optimizer.discriminator.lr=2e-4"])
    assert {k: v[0] for k, v in _lrs(tmp_path / "rms").items()} == {"generator": 5e-5, "discriminator": 2e-4}


def test_a_side_with_a_larger_lr_takes_larger_steps():
    """The same gradients, a D lr 10x G's: Adam's first step moves each weight by ~lr."""
    cfg = compose(["+experiment=none", "optimizer.discriminator.lr=2e-3"])
    g_net, d_net = _net(), _net()
    g_opt = build_optimizer(cfg.optimizer, g_net.parameters(), "generator")
    d_opt = build_optimizer(cfg.optimizer, d_net.parameters(), "discriminator")
    x = torch.randn(32, 2)
    moves = []
    for net, opt in ((g_net, g_opt), (d_net, d_opt)):
        before = [p.detach().clone() for p in net.parameters()]
        net(x).pow(2).mean().backward()
        opt.step()
        moves.append(max((p - b).abs().max().item() for p, b in zip(net.parameters(), before)))
    assert moves[0] == pytest.approx(2e-4, rel=1e-3) and moves[1] == pytest.approx(2e-3, rel=1e-3)


@pytest.mark.parametrize("override, sentence", [
    ("+optimizer.discriminator.lrr=1e-3", "Unknown key 'optimizer.discriminator.lrr'"),
    ("optimizer.discriminator.lr=-1e-3", "optimizer.discriminator.lr must be positive"),
    ("optimizer.generator.betas=[0.5,1.5]", "The generator's optimizer rejects its settings"),
])
def test_a_wrong_side_setting_is_one_sentence(override, sentence):
    from gan_platform.config import validate
    from gan_platform.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(sentence)):
        validate(compose([override]))
