"""Conditional GAN: concat and projection conditioning, and the mismatched-pair term in D's loss."""

import copy

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator

from helpers import TINY, train
from gan_platform.errors import ConfigError
from gan_platform.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_platform.models.mlp import MLPDiscriminator, MLPGenerator
from gan_platform.runs.rundir import read_metrics
from gan_platform.tasks.gan import GANTask


def test_concat_appends_the_one_hot_class_to_z_and_as_constant_channels_to_d():
    torch.manual_seed(0)
    D = DCGANDiscriminator((1, 16, 16), width=8, num_classes=10, conditioning="concat")
    assert D.body[0].in_channels == 1 + 10
    seen = {}
    D.body[0].register_forward_pre_hook(lambda m, inp: seen.update(x=inp[0].clone()))
    x, y = torch.rand(3, 1, 16, 16) * 2 - 1, torch.tensor([0, 3, 9])
    D(x, y)
    planes = seen["x"][:, 1:]  # the 10 class planes behind the image channel
    assert planes.shape == (3, 10, 16, 16)
    for i, c in enumerate(y.tolist()):
        assert torch.all(planes[i, c] == 1) and planes[i].sum() == 16 * 16
    assert torch.equal(seen["x"][:, :1], x)
    G = DCGANGenerator((1, 16, 16), z_dim=8, width=8, num_classes=10)
    assert G.project[0].in_features == 8 + 10
    G.eval()
    z = torch.randn(2, 8)
    assert not torch.allclose(G(z, torch.tensor([1, 1])), G(z, torch.tensor([2, 2])))


def test_projection_score_is_linear_plus_class_embedding_dot_features():
    """Miyato & Koyama: D(x, y) = w . phi(x) + embed(y) . phi(x); the class is not in D's input."""
    torch.manual_seed(0)
    D = MLPDiscriminator((2,), hidden=16, depth=2, num_classes=8, conditioning="projection")
    assert D.body[0].in_features == 2
    with torch.no_grad():
        D.head.embed.weight.normal_()
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 7, 7])
    phi = D.body(x)
    expected = phi @ D.head.linear.weight[0] + D.head.linear.bias + (D.head.embed.weight[y] * phi).sum(1)
    assert torch.allclose(D(x, y), expected, atol=1e-6)
    # a different class changes the score by exactly (embed(y') - embed(y)) . phi(x)
    y2 = (y + 1) % 8
    delta = ((D.head.embed.weight[y2] - D.head.embed.weight[y]) * phi).sum(1)
    assert torch.allclose(D(x, y2) - D(x, y), delta, atol=1e-5)
    assert delta.abs().min() > 1e-4


def test_a_conditional_model_without_labels_is_refused_and_packing_too():
    D = MLPDiscriminator((2,), hidden=8, depth=1, num_classes=3)
    with pytest.raises(ValueError, match="pass class labels"):
        D(torch.randn(4, 2))
    with pytest.raises(ConfigError, match="pack=1 for a conditional run"):
        MLPDiscriminator((2,), num_classes=3, pack=2)
    with pytest.raises(ConfigError, match="Unknown model.conditioning 'film'"):
        DCGANDiscriminator((1, 8, 8), num_classes=3, conditioning="film")


def _task(num_classes: int, mismatch_weight: float, loss: str = "nonsaturating", conditioning: str = "concat") -> GANTask:
    torch.manual_seed(0)
    acc = Accelerator(cpu=True)
    G = MLPGenerator((2,), z_dim=4, hidden=16, depth=2, num_classes=num_classes)
    D = MLPDiscriminator((2,), hidden=16, depth=2, num_classes=num_classes, conditioning=conditioning)
    return GANTask(acc, G, D, torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3),
                   loss=loss, z_dim=4, num_classes=num_classes, mismatch_weight=mismatch_weight,
                   clip_value=0.01 if loss == "wasserstein" else 0.0)


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_d_loss_includes_the_mismatched_pair_term(conditioning):
    """Two classes, so the wrong label is 1 - c: L_D(w) - L_D(0) = w * E[softplus(D(x, 1 - c))]."""
    x = torch.randn(32, 2)
    y = torch.randint(2, (32,), generator=torch.Generator().manual_seed(1))
    without = _task(2, 0.0, conditioning=conditioning)
    with_term = _task(2, 0.5, conditioning=conditioning)
    D_before = copy.deepcopy(with_term.discriminator)
    for a, b in zip(without.discriminator.parameters(), with_term.discriminator.parameters()):
        assert torch.equal(a, b)
    torch.manual_seed(5)
    logs0 = without.d_step(x, y)
    torch.manual_seed(5)
    logs1 = with_term.d_step(x, y)
    assert "d_wrong_label" not in logs0
    with torch.no_grad():
        wrong = D_before(x, 1 - y)
        # the same fakes, G(z, c) with the real labels, judged by the untouched D
        torch.manual_seed(5)
        fake = with_term.generator(torch.randn(32, 4), y)
        expected0 = F.softplus(-D_before(x, y)).mean() + F.softplus(D_before(fake, y)).mean()
    assert logs0["d_loss"].item() == pytest.approx(expected0.item(), rel=1e-5)
    assert logs1["d_loss"].item() - logs0["d_loss"].item() == pytest.approx(0.5 * F.softplus(wrong).mean().item(), rel=1e-4)
    assert logs1["d_wrong_label"].item() == pytest.approx(wrong.mean().item(), rel=1e-5)
    # and the term moves D: its parameters after the step differ from those of the step without it
    assert not torch.allclose(without.discriminator.head.linear.weight, with_term.discriminator.head.linear.weight)


def test_wasserstein_critic_loss_with_mismatch_is_the_conditional_wgan_objective_plus_w_times_wrong():
    """Conditional WGAN: L_D = -(E[D(x, c)] - E[D(G(z, c), c)]) + w E[D(x, c_wrong)]."""
    task = _task(10, 2.0, loss="wasserstein")
    x, y = torch.randn(64, 2), torch.arange(64) % 10
    logs = task.d_step(x, y)
    expected = -logs["d_real"] + logs["d_fake"] + 2.0 * logs["d_wrong_label"]
    assert logs["d_loss"].item() == pytest.approx(expected.item(), abs=1e-6)
    assert logs["wasserstein"].item() == pytest.approx((logs["d_real"] - logs["d_fake"]).item(), abs=1e-7)


def test_wrong_labels_are_never_right_and_uniform_over_the_others():
    task = _task(10, 1.0)
    labels = torch.full((9000,), 3)
    torch.manual_seed(0)
    wrong = task.wrong_labels(labels)
    assert not (wrong == labels).any()
    counts = torch.bincount(wrong, minlength=10)
    assert counts[3] == 0 and counts.sum() == 9000
    others = counts[torch.arange(10) != 3].float()
    assert others.min() > 850 and others.max() < 1150  # 1000 each, sd ~30


def test_mismatch_needs_classes():
    with pytest.raises(ConfigError, match="task.mismatch_weight > 0 needs a conditional run"):
        _task(0, 1.0)


RING = TINY + ["dataset=ring8", "model=mlp", "model.generator.hidden=16", "model.discriminator.hidden=16",
               "task.conditional=true", "task.mismatch_weight=0.5", "trainer.steps=3", "trainer.log_every=1",
               "trainer.sample_every=0", "eval.every=0"]


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
@pytest.mark.parametrize("experiment", ["gan", "nsgan", "wgan", "wgan_gp", "hinge", "lsgan"])
def test_conditioning_works_with_every_loss(tmp_path, experiment, conditioning):
    summary = train(tmp_path, [f"+experiment={experiment}", *RING, f"model.conditioning={conditioning}"])
    assert summary["status"] == "finished"
    records = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "train/d_loss" in r]  # eval records aside
    assert len(records) == 3
    for r in records:
        for key in ("train/d_loss", "train/g_loss", "train/d_wrong_label"):
            assert torch.isfinite(torch.tensor(r[key])), (key, r)
    if experiment == "wgan_gp":  # E[(||grad D(x_hat)|| - 1)^2]: near 1 for a fresh critic whose gradients are small
        assert 0.05 < records[-1]["train/grad_penalty"] < 5


def test_cgan_bundles_are_conditional_with_mismatched_pairs_on():
    from helpers import compose

    cgan = compose(["+experiment=cgan"])
    assert cgan.task.conditional and cgan.task.mismatch_weight == 1.0
    assert cgan.model.generator._target_.endswith("DCGANGenerator") and cgan.dataset._target_.endswith("digits")
    assert cgan.model.conditioning == "projection"
    ring = compose(["+experiment=cgan_ring8"])
    assert ring.task.conditional and ring.task.mismatch_weight == 1.0 and ring.model.conditioning == "concat"
    assert ring.model.generator._target_.endswith("MLPGenerator") and ring.dataset._target_.endswith("ring8")
    assert compose([]).task.mismatch_weight == 0.0 and not compose([]).task.conditional


def test_mismatch_weight_in_an_unconditional_run_is_ignored_with_a_warning(tmp_path, caplog):
    import logging

    overrides = [o for o in RING if not o.startswith("task.conditional")] + ["task.conditional=false"]
    with caplog.at_level(logging.WARNING, logger="gan_platform.run"):
        summary = train(tmp_path, overrides)
    assert summary["status"] == "finished"
    assert "task.mismatch_weight=0.5 is ignored: this run is unconditional" in caplog.text
    assert all("train/d_wrong_label" not in r for r in read_metrics(tmp_path / "metrics.jsonl"))
