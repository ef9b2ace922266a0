"""Schedules in images seen (training/schedules.py): the formula, the values a real run sets on its
optimizers, phases, G's average and augmentation at each image count, logged at the log cadence, and
the same after a resume in the middle of a ramp; wrong schedules refused in one sentence."""

from __future__ import annotations

import math

import pytest
import torch

from helpers import TINY, compose, train
from gan_platform.config import validate
from gan_platform.errors import ConfigError
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.rundir import read_metrics
from gan_platform.training.schedules import Schedule, parse

BATCH = 8
SCHEDULES = ["+schedules.optimizer.lr={shape:linear,start:1.0e-3,end:2.0e-4,kimg:0.064}",          # 8 iterations
             "+schedules.optimizer.beta2={shape:cosine,start:0.9,end:0.99,kimg:0.048,from_kimg:0.008}",
             "+schedules.loss.gamma={shape:cosine,start:1.0,end:0.1,kimg:0.064}",
             "+schedules.trainer.ema.half_life_images={shape:linear,start:0,end:500,kimg:0.064}",
             "+schedules.augment.p={shape:linear,start:0,end:0.5,kimg:0.064}"]
RUN = TINY + ["+experiment=r3gan", f"trainer.batch_size={BATCH}", "model.generator.width=4", "model.discriminator.width=4",
              "trainer.ema.decay=0", "trainer.ema.rampup=null", "trainer.ema.half_life_images=500", "augment=ada",
              "augment.speed_images=0", "trainer.log_every=2", "trainer.sample_every=0", "eval.every=0",
              "eval.num_samples=100", "trainer.checkpoint_every=2", *SCHEDULES]


def test_the_shapes_follow_their_formulas_and_hold_outside_their_span():
    lin = Schedule("optimizer.lr", "linear", 1.0, 3.0, 1000, 3000)
    cos = Schedule("optimizer.lr", "cosine", 1.0, 3.0, 1000, 3000)
    assert [lin.value(i) for i in (0, 1000, 1500, 2000, 3000, 9000)] == [1.0, 1.0, 1.5, 2.0, 3.0, 3.0]
    assert [cos.value(i) for i in (0, 1000, 2000, 3000, 9000)] == pytest.approx([1.0, 1.0, 2.0, 3.0, 3.0])
    assert cos.value(1500) == pytest.approx(1.0 + 2.0 * (1 - math.cos(math.pi / 4)) / 2)
    assert parse("loss.gamma", {"start": 2, "end": 0.2, "kimg": 20000}) == Schedule("loss.gamma", "cosine", 2, 0.2, 0, 2e7)


def _expected(images: int) -> dict[str, float]:
    t = lambda lo, hi: min(1.0, max(0.0, (images - lo) / (hi - lo)))  # noqa: E731
    cos = lambda x: (1 - math.cos(math.pi * x)) / 2  # noqa: E731
    return {"optimizer.lr": 1e-3 + t(0, 64) * (2e-4 - 1e-3), "optimizer.beta2": 0.9 + cos(t(8, 48)) * 0.09,
            "loss.gamma": 1.0 + cos(t(0, 64)) * (0.1 - 1.0), "trainer.ema.half_life_images": t(0, 64) * 500,
            "augment.p": t(0, 64) * 0.5}


def test_a_run_sets_every_scheduled_value_before_each_iteration(tmp_path):
    from gan_platform.run import build_trainer

    trainer = build_trainer(compose(RUN + ["trainer.steps=10"]), tmp_path / "run")
    task = trainer.task
    for step in range(10):
        trainer.iteration()
        trainer.step += 1
        want = _expected(step * BATCH)  # set before the iteration, from the images seen until then
        for side in ("generator", "discriminator"):
            group = task.optimizers[side].param_groups[0]
            assert group["lr"] == pytest.approx(want["optimizer.lr"], rel=1e-12)
            assert group["betas"] == (0.0, pytest.approx(want["optimizer.beta2"], rel=1e-12))
        assert task.phases.by_name["r1"].weight == task.phases.by_name["r2"].weight == pytest.approx(want["loss.gamma"])
        assert trainer.ema.half_life == pytest.approx(want["trainer.ema.half_life_images"])
        assert float(task.augment.p) == pytest.approx(want["augment.p"], abs=1e-7)
    trainer.run_dir.unlock()


def test_scheduled_values_are_logged_and_a_resume_mid_ramp_continues_them_exactly(tmp_path, caplog):
    straight = train(tmp_path / "straight", RUN + ["trainer.steps=8"])
    train(tmp_path / "stopped", RUN + ["trainer.steps=4"])
    resumed = train(tmp_path / "stopped", RUN + ["trainer.steps=8", "trainer.resume=auto"])
    assert straight["status"] == resumed["status"] == "finished"
    assert "Resuming with the config's" not in caplog.text  # the schedule owns lr and betas: no false warning
    rows = [r for r in read_metrics(tmp_path / "straight" / "metrics.jsonl") if "schedule/optimizer.lr" in r]
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    for r in rows:  # the values of the window's last iteration, set at (step - 1) x batch images
        want = _expected((r["step"] - 1) * BATCH)
        assert {k.removeprefix("schedule/"): v for k, v in r.items() if k.startswith("schedule/")} == pytest.approx(want)
    timeless = lambda run: [{k: v for k, v in r.items() if not k.startswith("perf/")}  # noqa: E731
                            for r in read_metrics(tmp_path / run / "metrics.jsonl")]
    assert timeless("stopped") == timeless("straight")
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last")[0]
    b = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last")[0]
    for net in a["modules"]:
        for key in a["modules"][net]:
            assert torch.equal(a["modules"][net][key], b["modules"][net][key]), (net, key)


@pytest.mark.parametrize("override, phrase", [
    ("+schedules.optimizer.momentum={start:0,end:1,kimg:1}", "Unknown schedule key 'optimizer.momentum'"),
    ("+schedules.optimizer.lr={start:1.0e-3,end:0,kimg:1,from_kimg:2}", "schedules.optimizer.lr ends (kimg 1) before it starts (from_kimg 2)"),
    ("+schedules.optimizer.lr={start:1.0e-3,end:0}", "schedules.optimizer.lr needs start, end and kimg"),
    ("+schedules.optimizer.lr={start:1.0e-3,end:0,kimg:1,shape:step}", "schedules.optimizer.lr.shape must be one of linear, cosine"),
])
def test_wrong_schedules_are_one_sentence(override, phrase):
    with pytest.raises(ConfigError, match=phrase.replace("(", r"\(").replace(")", r"\)")) as info:
        validate(compose(["+experiment=r3gan", override]))
    assert str(info.value).count(". ") == 0


def test_a_schedule_that_something_else_moves_too_is_refused():
    with pytest.raises(ConfigError, match="trainer.lr_decay=linear moves it too"):
        validate(compose(["+experiment=default", "+schedules.optimizer.lr={start:1.0e-3,end:0,kimg:1}"]))
    with pytest.raises(ConfigError, match="needs augment=ada with augment.speed_images=0"):
        validate(compose(["+experiment=r3gan", "augment=ada", "+schedules.augment.p={start:0,end:0.5,kimg:1}"]))
    with pytest.raises(ConfigError, match="moves G's average, which is off"):
        validate(compose(["+experiment=none", "+schedules.trainer.ema.half_life_images={start:0,end:5,kimg:1}"]))
