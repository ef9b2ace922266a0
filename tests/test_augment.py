"""Differentiable augmentation: DiffAugment's transformations, ADA's adaptive p, the config group."""

import math

import pytest
import torch

from helpers import TINY, compose, train
from gan_platform.augment import AdaptiveAugment, DiffAugment, NoAugment
from gan_platform.augment.diffaug import color, cutout, translation
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.rundir import read_metrics


def test_diffaugment_keeps_the_shape_and_passes_gradients():
    torch.manual_seed(0)
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    out = DiffAugment()(x)
    assert out.shape == (8, 3, 16, 16)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert not torch.equal(out.detach(), x.detach())


def test_translation_and_cutout_move_and_hide_pixels_and_their_gradient_says_which():
    torch.manual_seed(1)
    ones = torch.ones(64, 1, 16, 16, requires_grad=True)
    shifted = translation(ones)  # up to 2 of 16 pixels each way, zeros shifted in
    zero_rows = (shifted[:, 0] == 0).all(dim=2).sum(1)
    zero_cols = (shifted[:, 0] == 0).all(dim=1).sum(1)
    assert zero_rows.max() <= 2 and zero_cols.max() <= 2 and (zero_rows + zero_cols).sum() > 0
    shifted.sum().backward()  # each kept pixel came from exactly one input pixel
    assert set(ones.grad.unique().tolist()) <= {0.0, 1.0}
    assert ones.grad.sum().item() == shifted.sum().item()
    hidden = (cutout(torch.ones(64, 1, 16, 16))[:, 0] == 0).flatten(1).sum(1)
    assert hidden.min() >= 16 and hidden.max() <= 64  # an 8x8 square, cut by the border at most to 4x4


def test_unknown_diffaugment_policy_is_one_sentence():
    with pytest.raises(ConfigError, match="augment.policy has unknown entries"):
        DiffAugment(["colour"])


def uniform_moments(values, low, high):
    """values lie in [low, high] and have the mean and variance of U(low, high), within 4 standard errors."""
    n, width = len(values), high - low
    assert values.min() >= low - 1e-6 and values.max() <= high + 1e-6
    assert values.mean().item() == pytest.approx((low + high) / 2, abs=4 * width / math.sqrt(12 * n))
    assert values.var().item() == pytest.approx(width**2 / 12, abs=4 * width**2 / (math.sqrt(180) * math.sqrt(n)))


def test_diffaugment_color_is_brightness_saturation_and_contrast_by_value():
    """DiffAugment's color step: + U(-0.5, 0.5); channels about their mean x U(0, 2); pixels about
    the image mean x U(0.5, 1.5), each image its own draw."""
    torch.manual_seed(3)
    n = 4000
    flat = torch.full((n, 3, 4, 4), 0.1)  # grey and constant: only brightness shows
    shift = color(flat) - flat
    assert (shift - shift[:, :1, :1, :1]).abs().max() < 1e-6
    uniform_moments(shift[:, 0, 0, 0], -0.5, 0.5)
    ramp = torch.linspace(-0.8, 0.8, 16).view(1, 1, 4, 4).expand(n, 3, 4, 4)  # grey: saturation changes nothing
    out = color(ramp)
    deviation = (out - out.mean(dim=(1, 2, 3), keepdim=True)) / ramp
    assert (deviation - deviation[:, :1, :1, :1]).abs().max() < 1e-4
    uniform_moments(deviation[:, 0, 0, 0], 0.5, 1.5)
    tint = torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1).expand(n, 3, 4, 4)  # constant colour: chroma x s x contrast
    out = color(tint)
    chroma = (out - out.mean(1, keepdim=True)) / (tint - tint.mean(1, keepdim=True))
    assert (chroma - chroma[:, :1, :1, :1]).abs().max() < 1e-4
    r = chroma[:, 0, 0, 0]  # s k with s ~ U(0, 2), k ~ U(0.5, 1.5): E = 1, E[r^2] = 4/3 * 13/12
    assert r.min() >= 0 and r.max() <= 3
    assert r.mean().item() == pytest.approx(1.0, abs=4 * math.sqrt(4 / 9 / n))
    assert r.square().mean().item() == pytest.approx(13 / 9, abs=0.1)


def test_ada_p_rises_while_d_overfits_and_falls_when_it_does_not():
    ada = AdaptiveAugment(target=0.6, interval=2, speed_images=100)
    confident = torch.full((10,), 3.0)  # D's margin on every real image > 0: r_t = 1 > 0.6
    ada.observe(confident, 10)
    assert ada.p.item() == 0.0  # nothing before the interval ends
    ada.observe(confident, 10)
    assert ada.p.item() == pytest.approx(0.2)  # + 20 images / 100
    for _ in range(20):
        ada.observe(confident, 10)
    assert ada.p.item() == 1.0  # clamped
    unsure = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0])  # sign(e): r_t = 0.2 < 0.6
    for _ in range(4):
        ada.observe(unsure, 5)
    assert ada.p.item() == pytest.approx(0.8)
    assert ada.logs()["augment_p"].item() == pytest.approx(0.8)
    assert ada.logs()["augment_rt"].item() == pytest.approx(0.2)  # the r_t that moved it


def test_an_ada_state_from_before_r_t_was_kept_loads_with_r_t_0_and_p_and_counters_kept():
    """Checkpoints written before ADA kept r_t for the log hold p, the sums and the counters only."""
    ada = AdaptiveAugment(target=0.6, interval=4, speed_images=100)
    ada.observe(torch.full((8,), 2.0), 8)
    ada.p.fill_(0.3)
    old = {k: v for k, v in ada.state_dict().items() if k != "r_t"}
    fresh = AdaptiveAugment(target=0.6, interval=4, speed_images=100)
    fresh.load_state_dict(old)
    assert (fresh.p.item(), fresh.r_t.item(), fresh.sign_sum.item(), fresh.steps_observed) == (pytest.approx(0.3), 0.0, 8.0, 1)
    with pytest.raises(RuntimeError, match="Missing key"):  # anything else missing is still an error
        fresh.load_state_dict({k: v for k, v in old.items() if k != "sign_sum"})


TINY_DIGITS = TINY + ["+experiment=nsgan", "dataset.fraction=0.05", "eval.every=0", "trainer.sample_every=0",
                      "trainer.log_every=2", "trainer.checkpoint_every=0", "model.generator.width=8",
                      "model.discriminator.width=8", "augment=ada", "augment.interval=1",
                      "augment.speed_images=320", "seed=5", "eval.num_samples=64"]


@pytest.mark.slow
def test_ada_p_is_logged_rises_on_a_small_dataset_and_resumes_exactly(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(straight, TINY_DIGITS + ["trainer.steps=12"])
    train(stopped, TINY_DIGITS + ["trainer.steps=6"])
    train(stopped, TINY_DIGITS + ["trainer.steps=12", "trainer.resume=auto"])
    logged = [r["train/augment_p"] for r in read_metrics(straight / "metrics.jsonl") if "train/augment_p" in r]
    assert len(logged) == 6 and logged[-1] > 0  # D on 89 images says "real" to most of them: p goes up
    a, _ = load_checkpoint(straight / "checkpoints" / "last")
    b, _ = load_checkpoint(stopped / "checkpoints" / "last")
    assert a["task"]["augment"]["p"].item() > 0
    assert torch.equal(a["task"]["augment"]["p"], b["task"]["augment"]["p"])
    for k, v in a["modules"]["discriminator"].items():
        assert torch.equal(v, b["modules"]["discriminator"][k]), k
    resumed = [r["train/augment_p"] for r in read_metrics(stopped / "metrics.jsonl") if "train/augment_p" in r]
    assert resumed == logged
    r_t = [[r["train/augment_rt"] for r in read_metrics(d / "metrics.jsonl") if "train/augment_rt" in r] for d in (straight, stopped)]
    assert r_t[0] == r_t[1] and len(set(r_t[0])) > 1


def test_augment_group_defaults_to_none_and_is_checked(tmp_path):
    cfg = compose([])
    assert cfg.augment.name == "none"
    for choice, cls in (("diffaug", "DiffAugment"), ("ada", "AdaptiveAugment")):
        assert compose([f"augment={choice}"]).augment._target_.endswith(cls)
    with pytest.raises(ConfigError, match="augment.target is a probability"):
        validate(compose(["augment=ada", "augment.target=1.5"]))
    with pytest.raises(ConfigError, match="Unknown key 'augment.strength'"):
        validate(compose(["augment=ada", "+augment.strength=2"]))
    with pytest.raises(ConfigError, match="augment=diffaug transforms images"):
        train_points = TINY + ["augment=diffaug", "trainer.steps=1"]
        from gan_platform.run import run
        run(compose(train_points), tmp_path)
    assert type(NoAugment()(torch.ones(1))) is torch.Tensor


@pytest.mark.slow
def test_resuming_with_another_augment_choice_is_one_sentence(tmp_path):
    from gan_platform.errors import UserError

    common = [a for a in TINY_DIGITS if not a.startswith("augment")] + ["trainer.steps=2"]
    train(tmp_path, common + ["augment=ada"])
    with pytest.raises(UserError, match="does not fit this run's augment choice"):
        train(tmp_path, common[:-1] + ["trainer.steps=4", "augment=none", "trainer.resume=auto"])
