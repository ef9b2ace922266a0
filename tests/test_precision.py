"""Mixed precision: bf16 trains on the CPU (and a GPU), fp16's gradient penalty survives the gradient scaler,
and fp16 without a GPU is refused rather than quietly run in float32."""

import math

import pytest
import torch
from torch import nn

from helpers import TINY, compose, train
from gan_platform import losses
from gan_platform.errors import ConfigError
from gan_platform.runs.rundir import read_metrics

RING = TINY + ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32",
               "trainer.log_every=2", "trainer.sample_every=0", "eval.every=0"]


def _penalty_and_grads(critic: nn.Module, real, fake, scaler=None, amp: bool = False, pass_scale: bool = True):
    """WGAN-GP's penalty and its gradient w.r.t. the critic, the AMP way when `scaler` is given."""
    opt = torch.optim.SGD(critic.parameters(), lr=0.0)
    opt.zero_grad()
    scale = scaler.get_scale() if (scaler is not None and pass_scale) else 1.0
    torch.manual_seed(1)  # the same interpolation points every time
    with torch.autocast("cpu", dtype=torch.float16, enabled=amp):
        penalty = losses.gradient_penalty(lambda x: critic(x).reshape(-1), real, fake, scale=scale)
    if scaler is not None:
        scaler.scale(penalty).backward()
        scaler.unscale_(opt)
    else:
        penalty.backward()
    grads = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in critic.parameters()])
    return penalty.item(), grads


def test_gradient_penalty_under_the_fp16_scaler_equals_the_fp32_penalty():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64), nn.LeakyReLU(0.2), nn.Linear(64, 1))
    with torch.no_grad():
        critic[4].weight.mul_(1e-4)  # small input gradients: fp16 underflows them unless they are scaled
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    p32, g32 = _penalty_and_grads(critic, real, fake)

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)  # the scaler's usual (large) initial scale
    p16, g16 = _penalty_and_grads(critic, real, fake, scaler=scaler, amp=True)
    assert math.isfinite(p16) and p16 == pytest.approx(p32, rel=1e-5)
    assert torch.isfinite(g16).all()
    assert ((g16 - g32).norm() / g32.norm()).item() < 0.02

    # the same step without the scale in the inner gradient: the penalty's gradient is visibly wrong
    _, g_unscaled = _penalty_and_grads(critic, real, fake, scaler=torch.amp.GradScaler("cpu", init_scale=1.0), amp=True,
                                       pass_scale=False)
    assert ((g_unscaled - g32).norm() / g32.norm()).item() > 0.05


def test_bf16_trains_end_to_end(tmp_path):
    """On the CPU (CI) and on a GPU alike."""
    from gan_platform.run import make_accelerator

    # one process, two precisions in a row: Accelerate's process-wide state is renewed, not refused
    assert train(tmp_path / "fp32", RING + ["trainer.steps=2"])["status"] == "finished"
    args = RING + ["loss=wasserstein", "loss.gradient_penalty=10", "task.conditional=true", "task.mismatch_weight=1",
                   "trainer.precision=bf16", "trainer.steps=6"]
    summary = train(tmp_path / "bf16", args)
    assert summary["status"] == "finished" and summary["step"] == 6
    records = [r for r in read_metrics(tmp_path / "bf16" / "metrics.jsonl") if "train/grad_penalty" in r]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert all(math.isfinite(r["train/d_loss"]) for r in records)
    # the penalty in bfloat16 is the float32 run's to bf16's rounding (0.9722 against 0.9723 at step 2)
    train(tmp_path / "fp32_gp", [a for a in args if a != "trainer.precision=bf16"])
    reference = [r["train/grad_penalty"] for r in read_metrics(tmp_path / "fp32_gp" / "metrics.jsonl") if "train/grad_penalty" in r]
    assert [r["train/grad_penalty"] for r in records] == pytest.approx(reference, rel=0.02) and min(reference) > 0.5
    acc = make_accelerator(compose(args))  # and the forward passes really ran in bfloat16
    with acc.autocast():
        assert nn.Linear(2, 2).to(acc.device)(torch.randn(3, 2, device=acc.device)).dtype == torch.bfloat16
    images = TINY + ["+experiment=wgan_gp", "model.generator.width=8", "model.discriminator.width=8", "trainer.d_steps=1",
                     "trainer.precision=bf16", "trainer.steps=2", "trainer.sample_every=0", "eval.every=0"]
    assert train(tmp_path / "digits", images)["status"] == "finished"


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 runs on a GPU")
def test_fp16_without_a_gpu_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer.precision=fp16 needs a GPU .*use trainer.precision=bf16"):
        train(tmp_path, RING + ["trainer.precision=fp16", "trainer.steps=1"])
