"""Training-health signals (tasks/gan.py) and warnings (training/health.py)."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from accelerate import Accelerator

from helpers import TINY, train
from gan_platform.models.mlp import MLPDiscriminator, MLPGenerator
from gan_platform.runs.rundir import read_metrics
from gan_platform.tasks.gan import GANTask
from gan_platform.tasks.signals import gradient_norm
from gan_platform.training.health import HealthLog, evaluation_failures, training_failures

HEALTH_KEYS = {"train/g_grad_norm", "train/d_grad_norm", "train/d_acc_real", "train/d_acc_fake"}


def _task(loss: str) -> GANTask:
    torch.manual_seed(0)
    acc = Accelerator(cpu=True)
    G, D = MLPGenerator([2], z_dim=4, hidden=16, depth=2), MLPDiscriminator([2], hidden=16, depth=2)
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.0)  # noqa: E731 - the networks stay as they are
    return GANTask(acc, G, D, sgd(G), sgd(D), loss=loss, z_dim=4, sample_shape=(2,))


@pytest.mark.parametrize("loss, threshold", [("nonsaturating", 0.0), ("hinge", 0.0), ("least_squares", 0.5)])
def test_the_step_measures_gradient_norms_and_accuracies_only_when_asked(loss, threshold):
    task = _task(loss)
    real = torch.randn(64, 2) + 1.0
    assert set(task.d_step(real, None)) == {"d_real", "d_fake", "d_loss"}  # not asked: nothing measured
    assert set(task.g_step(real, None)) == {"g_loss"}
    task.measure_health = True
    torch.manual_seed(1)
    logs = task.d_step(real, None)
    torch.manual_seed(1)
    fake = task.generator(task.noise(64)).detach()
    scores_real, scores_fake = task.discriminator(real).detach(), task.discriminator(fake).detach()
    assert logs["d_acc_real"].item() == pytest.approx((scores_real > threshold).float().mean().item())
    assert logs["d_acc_fake"].item() == pytest.approx((scores_fake < threshold).float().mean().item())
    # the norm of the gradient the optimizer stepped with (SGD lr 0 keeps the .grad of this step)
    expected = torch.nn.utils.get_total_norm([p.grad for p in task.discriminator.parameters()]).item()
    assert logs["d_grad_norm"].item() == pytest.approx(expected, rel=1e-5) and expected > 0
    g_logs = task.g_step(real, None)
    expected = torch.nn.utils.get_total_norm([p.grad for p in task.generator.parameters()]).item()
    assert g_logs["g_grad_norm"].item() == pytest.approx(expected, rel=1e-5) and expected > 0
    assert all(v.dim() == 0 for v in (*logs.values(), *g_logs.values()))  # device tensors, no host sync


def test_a_critic_has_gradient_norms_but_no_accuracy():
    task = _task("wasserstein")
    task.measure_health = True
    assert set(task.d_step(torch.randn(8, 2), None)) == {"d_real", "d_fake", "d_loss", "wasserstein", "d_grad_norm"}


def test_gradient_norm_is_the_norm_of_all_gradients_together():
    net = torch.nn.Linear(3, 2)
    net.weight.grad, net.bias.grad = torch.full((2, 3), 1.0), torch.full((2,), 2.0)
    assert gradient_norm(net).item() == pytest.approx((6 * 1 + 2 * 4) ** 0.5)
    assert gradient_norm(net, scale=2.0).item() == pytest.approx((6 + 8) ** 0.5 / 2)


def test_the_failures_recognised():
    sick = {"train/d_loss": 0.01, "train/g_grad_norm": 1e-5, "train/d_acc_real": 1.0, "train/d_acc_fake": 1.0}
    assert [k for k, _ in training_failures(sick)] == ["d_wins"]
    assert training_failures({**sick, "train/g_grad_norm": 0.5}) == []  # G still learns (non-saturating loss)
    assert training_failures({**sick, "train/d_loss": 0.7}) == []
    critic = {k: v for k, v in sick.items() if "acc" not in k}
    assert training_failures(critic) == []  # a Wasserstein critic's loss has no "near 0"
    assert [k for k, _ in evaluation_failures({"collapse/modes": 25.0}, {"collapse/modes": 20.0})] == ["collapse"]
    assert evaluation_failures({"collapse/modes": 25.0}, {"collapse/modes": 24.0}) == []
    assert [k for k, _ in evaluation_failures({"collapse/class_entropy": 2.3}, {"collapse/class_entropy": 1.5})] == ["collapse"]
    assert evaluation_failures({}, {"collapse/modes": 3.0}) == []
    health = HealthLog()
    assert len(health.record(training_failures(sick), 10)) == 1
    assert health.record(training_failures(sick), 20) == []  # logged once, counted on
    assert health.warnings[0]["step"] == 10 and health.warnings[0]["last_step"] == 20 and health.warnings[0]["count"] == 2


# the plain GAN (+experiment=none): no R1 to calm D
RING = TINY + ["+experiment=none", "dataset=ring8", "model.generator.hidden=16", "model.discriminator.hidden=16", "trainer.sample_every=0",
               "eval.every=0", "eval.num_samples=200"]


@pytest.mark.slow
def test_a_run_logs_the_signals_at_the_log_cadence_and_warns_when_d_wins(tmp_path, caplog):
    # the saturating loss, a fast D and a G that barely moves: D wins and G's gradient vanishes
    winning = RING + ["loss=minimax", "trainer.steps=300", "trainer.log_every=100", "optimizer.discriminator.lr=1e-2",
                      "optimizer.generator.lr=1e-9"]
    with caplog.at_level(logging.WARNING, logger="gan_platform.training.trainer"):
        summary = train(tmp_path / "wins", winning)
    rows = [r for r in read_metrics(tmp_path / "wins" / "metrics.jsonl") if "train/d_loss" in r]
    assert [r["step"] for r in rows] == [100, 200, 300] and all(HEALTH_KEYS <= set(r) for r in rows)
    assert rows[-1]["train/d_acc_real"] == 1.0 and rows[-1]["train/d_acc_fake"] == 1.0
    assert [w["kind"] for w in summary["warnings"]] == ["d_wins"]
    on_disk = json.loads((tmp_path / "wins" / "summary.json").read_text())
    assert on_disk["warnings"] == summary["warnings"]
    assert sum("D wins outright" in r.getMessage() for r in caplog.records) == 1  # logged once
    # the non-saturating loss in the same duel keeps G's gradient: no warning
    healthy = train(tmp_path / "ns", [o.replace("loss=minimax", "loss=nonsaturating") for o in winning])
    assert healthy["warnings"] == []
