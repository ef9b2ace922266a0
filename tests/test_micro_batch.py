"""Gradient accumulation (`trainer.micro_batch`, tasks/rounds.py): a step computed in rounds gives
the whole batch's gradients for every loss and penalty, its logs are the whole batch's, a run in
rounds learns what the unsplit run learns and resumes bit for bit, and bad values are refused in
one sentence. (Two processes with rounds, where every round but the last skips DDP's all-reduce:
tests/test_multiprocess.py's TASKS.)"""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from helpers import TINY, compose, train
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.models.mlp import MLPDiscriminator, MLPGenerator
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.rundir import read_metrics
from gan_platform.tasks.gan import GANTask
from gan_platform.tasks.phases import LOG_NAMES, Phase, Phases
from gan_platform.tasks.rounds import split

LOSSES = ["minimax", "nonsaturating", "hinge", "least_squares", "wasserstein", "relativistic"]


def _task(loss: str, micro_batch, *, penalty: str = "", conditional: bool = False, pack: int = 1) -> GANTask:
    """MLPs on 2-D points (no batch statistics: each sample judged alone), SGD at lr 0, so that the
    weights never move and every step's gradients can be compared; the same weights for every call."""
    torch.manual_seed(0)
    classes = 3 if conditional else 0
    G = MLPGenerator((2,), z_dim=4, hidden=16, depth=2, num_classes=classes)
    D = MLPDiscriminator((2,), hidden=16, depth=2, num_classes=classes, pack=pack)
    sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.0)  # noqa: E731
    phases = Phases([Phase(penalty, 3.0)] if penalty and penalty != "mismatch" else [])
    return GANTask(Accelerator(cpu=True), G, D, sgd(G), sgd(D), loss=loss, z_dim=4, num_classes=classes,
                   mismatch_weight=1.0 if penalty == "mismatch" else 0.0, phases=phases, micro_batch=micro_batch)


def _grads(module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])


def _step(task: GANTask, real, labels) -> tuple[dict, torch.Tensor, dict, torch.Tensor]:
    """One D step and one G step from the same random state: their logs and gradients."""
    torch.manual_seed(1)
    d_logs = task.d_step(real, labels)
    d_grad = _grads(task.discriminator)
    torch.manual_seed(2)
    g_logs = task.g_step(real, labels)
    return d_logs, d_grad, g_logs, _grads(task.generator)


CASES = [(loss, "", False, 1) for loss in LOSSES] + [
    ("nonsaturating", "r1", False, 1), ("nonsaturating", "r2", False, 1), ("relativistic", "r1", True, 1),
    ("wasserstein", "gradient_penalty", False, 1), ("wasserstein", "gradient_penalty", False, 2),
    ("hinge", "mismatch", True, 1), ("nonsaturating", "", False, 4)]


@pytest.mark.parametrize("loss, penalty, conditional, pack", CASES)
def test_rounds_give_the_whole_batchs_gradients_and_logs(loss, penalty, conditional, pack):
    real = torch.randn(16, 2, generator=torch.Generator().manual_seed(3))
    labels = torch.arange(16) % 3 if conditional else None
    whole = _step(_task(loss, None, penalty=penalty, conditional=conditional, pack=pack), real, labels)
    rounds = _step(_task(loss, 4, penalty=penalty, conditional=conditional, pack=pack), real, labels)
    d_whole, gd_whole, g_whole, gg_whole = whole
    d_rounds, gd_rounds, g_rounds, gg_rounds = rounds
    assert gd_whole.abs().sum() > 0 and gg_whole.abs().sum() > 0
    torch.testing.assert_close(gd_rounds, gd_whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gg_rounds, gg_whole, rtol=1e-5, atol=1e-6)
    assert set(d_rounds) == set(d_whole) and set(g_rounds) == set(g_whole)
    for key in d_whole:
        torch.testing.assert_close(d_rounds[key], d_whole[key], rtol=1e-5, atol=1e-6, msg=key)
    for key in g_whole:
        torch.testing.assert_close(g_rounds[key], g_whole[key], rtol=1e-5, atol=1e-6, msg=key)
    if penalty and penalty != "mismatch":  # the penalty was really in the step, and in every round's share
        assert d_whole[LOG_NAMES[penalty]] > 0


def test_ada_observes_the_whole_batch_once_a_step():
    """ADA's evidence (the sign of D on the real images) is counted over the whole batch, once a D
    step: after 4 steps in rounds of 4, the same counts, r_t and p as after 4 whole steps (p = 0 at the
    start: no image moved, so that D's scores, and so the evidence, are the same either way)."""
    from gan_platform.augment.ada import AdaptiveAugment

    def run(micro_batch):
        torch.manual_seed(0)
        G, D = MLPGenerator((1, 4, 4), z_dim=4, hidden=16, depth=2), MLPDiscriminator((1, 4, 4), hidden=16, depth=2)
        ada = AdaptiveAugment(target=0.0, interval=4, speed_images=64, transforms=["xflip"])
        sgd = lambda m: torch.optim.SGD(m.parameters(), lr=0.0)  # noqa: E731
        task = GANTask(Accelerator(cpu=True), G, D, sgd(G), sgd(D), loss="nonsaturating", z_dim=4,
                       augment=ada, micro_batch=micro_batch)
        real = torch.randn(16, 1, 4, 4, generator=torch.Generator().manual_seed(3))
        counts = []
        for step in range(4):
            torch.manual_seed(10 + step)
            task.d_step(real, None)
            counts.append((float(ada.sign_sum), float(ada.score_count), ada.steps_observed, ada.images_observed))
        return counts, float(ada.r_t), float(ada.p)

    (whole, rt_whole, p_whole), (rounds, rt_rounds, p_rounds) = run(None), run(4)
    assert [c[1:] for c in whole[:3]] == [(16.0, 1, 16), (32.0, 2, 32), (48.0, 3, 48)]  # then the interval ends
    assert rounds == whole and rt_rounds == rt_whole and p_rounds == p_whole
    assert p_whole == pytest.approx(1.0 if rt_whole > 0 else 0.0)  # moved by 64 images / speed 64, clamped


def test_the_rounds_of_a_batch_cover_it_once_in_order():
    assert split(16, None) == [slice(0, 16)]
    assert split(16, 4) == [slice(0, 4), slice(4, 8), slice(8, 12), slice(12, 16)]
    assert split(10, 4) == [slice(0, 4), slice(4, 8), slice(8, 10)]


def test_health_signals_are_the_whole_batchs():
    real = torch.randn(16, 2, generator=torch.Generator().manual_seed(3))
    logs = []
    for micro_batch in (None, 4):
        task = _task("nonsaturating", micro_batch)
        task.measure_health = True
        logs.append(_step(task, real, None))
    (d_whole, _, g_whole, _), (d_rounds, _, g_rounds, _) = logs
    for key in ("d_grad_norm", "d_acc_real", "d_acc_fake"):
        torch.testing.assert_close(d_rounds[key], d_whole[key], rtol=1e-5, atol=1e-6, msg=key)
    torch.testing.assert_close(g_rounds["g_grad_norm"], g_whole["g_grad_norm"], rtol=1e-5, atol=1e-6)


def test_orthogonal_regularisation_counts_once_per_step_and_path_length_per_round():
    """BigGAN's orthogonal term is G's weights' (not the batch's): once a step, at its full weight.
    StyleGAN2's path length is taken per round, each round updating the running mean."""
    from helpers import built_task as built

    x = torch.zeros(8, 1, 8, 8)
    biggan = ["+experiment=hinge", "model=biggan", "task.conditional=true", "dataset.resolution=8",
              "model.generator.width=4", "model.discriminator.width=4", "loss.orthogonal=1e-4", "trainer.batch_size=8"]
    torch.manual_seed(0)
    whole = built(biggan).g_step(x, torch.arange(8) % 10)["orthogonal_penalty"]
    torch.manual_seed(0)
    rounds = built([*biggan, "trainer.micro_batch=2"]).g_step(x, torch.arange(8) % 10)["orthogonal_penalty"]
    assert whole.item() > 0
    assert rounds.item() == pytest.approx(whole.item(), rel=1e-6)
    stylegan2 = ["+experiment=nsgan", "model=stylegan2", "dataset.resolution=8", "model.generator.channel_base=64",
                 "model.discriminator.channel_base=64", "model.z_dim=8", "model.generator.w_dim=8",
                 "model.generator.mapping_layers=2", "loss.path_length=2", "loss.path_length_decay=0.5",
                 "task.phases.path_length.every=1", "trainer.batch_size=8"]
    means = []
    for extra in ([], ["trainer.micro_batch=4"]):
        torch.manual_seed(0)
        task = built(stylegan2 + extra)
        logs = task.g_step(x, None)
        assert torch.isfinite(logs["path_length_penalty"]) and logs["path_length_penalty"] > 0
        means.append(float(task.path_length_mean))
    # a decay of 1/2 from 0: one update leaves a = L/2, two leave a = 3L/4 (L the mean length, near both times)
    assert means[1] / means[0] == pytest.approx(1.5, rel=0.35)


DEFAULT = [*TINY, "trainer.log_every=1", "eval.every=0", "trainer.sample_every=0", "seed=4"]


# values that move with the images seen: a schedule of both learning rates and R1's weight, and G's
# moving average with a half-life ramped up from the images seen
COUNTED = ["+schedules.optimizer.lr={shape:cosine,start:2.0e-3,end:5.0e-4,kimg:0.096}",
           "+schedules.loss.gamma={shape:linear,start:0.5,end:0.1,kimg:0.064}",
           "trainer.lr_decay=none", "trainer.ema.decay=0", "trainer.ema.half_life_images=500", "trainer.ema.rampup=0.5"]


def test_a_run_in_rounds_learns_what_the_whole_batch_run_learns(tmp_path):
    """The default recipe (MLPs on the ring: no batch statistics) for 6 steps, with batches of 16
    whole and in rounds of 4: the same images seen, scheduled values and losses at every step, the
    same weights and moving average at the end (to rounding)."""
    train(tmp_path / "whole", [*DEFAULT, *COUNTED, "trainer.steps=6"])
    summary = train(tmp_path / "rounds", [*DEFAULT, *COUNTED, "trainer.steps=6", "trainer.micro_batch=4"])
    assert summary["status"] == "finished" and summary["step"] == 6
    whole, rounds = ([r for r in read_metrics(tmp_path / d / "metrics.jsonl") if "train/d_loss" in r]
                     for d in ("whole", "rounds"))
    assert [r["step"] for r in rounds] == list(range(1, 7))
    for a, b in zip(whole, rounds):
        for key in ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)
        assert b["images_seen"] == a["images_seen"] == 16 * a["step"]  # the whole batch, not a round
        assert b["schedule/optimizer.lr"] == a["schedule/optimizer.lr"] and b["schedule/loss.gamma"] == a["schedule/loss.gamma"]
    assert whole[-1]["schedule/optimizer.lr"] < whole[0]["schedule/optimizer.lr"]  # the schedule moved
    (ma, _), (mb, _) = (load_checkpoint(tmp_path / d / "checkpoints" / "last") for d in ("whole", "rounds"))
    for net in ("generator", "discriminator", "generator_ema"):
        for k, v in ma["modules"][net].items():
            torch.testing.assert_close(mb["modules"][net][k], v, rtol=1e-4, atol=1e-6, msg=(net, k))


@pytest.mark.parametrize("override, phrase", [
    ("trainer.micro_batch=5", "trainer.micro_batch must divide trainer.batch_size=16 into whole rounds, got 5"),
    ("trainer.micro_batch=0", "trainer.micro_batch must divide trainer.batch_size=16 into whole rounds, got 0"),
    ("trainer.micro_batch=-4", "trainer.micro_batch must divide trainer.batch_size=16 into whole rounds, got -4"),
    ("trainer.micro_batch=32", "trainer.micro_batch must divide trainer.batch_size=16 into whole rounds, got 32"),
])
def test_a_micro_batch_that_does_not_divide_the_batch_is_one_sentence(override, phrase):
    with pytest.raises(ConfigError, match=phrase):
        validate(compose([*TINY, override]))


def test_a_micro_batch_of_part_of_a_pack_and_cyclegan_rounds_are_refused():
    with pytest.raises(ConfigError, match=r"trainer.micro_batch=2 is not a whole number of packs of 4"):
        validate(compose([*TINY, "model.discriminator.pack=4", "trainer.micro_batch=2"]))
    validate(compose([*TINY, "model.discriminator.pack=4", "trainer.micro_batch=8"]))  # two packs a round
    with pytest.raises(ConfigError, match="task=cyclegan trains whole batches"):
        validate(compose(["+experiment=cyclegan", "trainer.micro_batch=1"]))
