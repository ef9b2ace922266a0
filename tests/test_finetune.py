"""Fine-tuning (`trainer.init_from`, training/init_from.py) with FreezeD (`model.discriminator.freeze`):
real runs, real checkpoints. The new run starts as the source's networks and nothing else, its frozen
blocks stay as they were, the source's files are untouched, and a fine-tuning run that stops resumes
its own checkpoint."""

from __future__ import annotations

import hashlib

import pytest
import torch

from helpers import TINY, compose, train
from gan_platform.config import validate
from gan_platform.errors import ConfigError, UserError
from gan_platform.runs.checkpoint import load_checkpoint

DIGITS = ["+experiment=nsgan", *TINY, "dataset.resolution=16", "model.generator.width=8",
          "model.discriminator.width=8", "trainer.log_every=2", "trainer.sample_every=0", "eval.every=0",
          "eval.enabled=false"]
CYCLE = ["+experiment=cyclegan", *TINY, "trainer.batch_size=4", "trainer.log_every=2", "trainer.sample_every=0",
         "eval.every=0", "eval.enabled=false", "task.pool_size=4"]


def files(run_dir):
    """Every file under `run_dir` with its SHA-256 and modification time."""
    return {str(p.relative_to(run_dir)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


def modules(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last")[0]["modules"]


def build(run_dir, overrides):
    from gan_platform.run import build_trainer

    cfg = compose(overrides)
    validate(cfg)
    return build_trainer(cfg, run_dir)


def close(trainer):
    trainer.tracker.finish(trainer.summary())
    trainer.run_dir.unlock()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A trained digits run with G's average (decay 0.5: the average is not G)."""
    run_dir = tmp_path_factory.mktemp("source")
    assert train(run_dir, DIGITS + ["trainer.steps=4", "trainer.ema.decay=0.5", "seed=1"])["status"] == "finished"
    return run_dir


@pytest.mark.parametrize("where", ["run dir", "checkpoint folder"])
def test_a_new_run_starts_as_the_source_networks_and_nothing_else(tmp_path, source, where):
    before = files(source)
    spec = source if where == "run dir" else source / "checkpoints" / "last"
    trainer = build(tmp_path, DIGITS + ["trainer.steps=4", "trainer.ema.decay=0.5", f"trainer.init_from={spec}"])
    try:
        stored = modules(source)
        assert set(trainer.task.modules) == set(stored) == {"generator", "discriminator", "generator_ema"}
        assert not all(torch.equal(stored["generator"][k], stored["generator_ema"][k]) for k in stored["generator"])
        for name, module in trainer.task.modules.items():
            state = trainer.acc.unwrap_model(module).state_dict()
            assert all(torch.equal(state[k], stored[name][k]) for k in stored[name]), name
        assert trainer.step == 0 and trainer.task.d_steps_done == 0  # not its step
        assert all(not opt.state for opt in trainer.task.optimizers.values())  # not its optimizer moments
        assert trainer.summary()["init_from"]["checkpoint"] == str(source / "checkpoints" / "last")
    finally:
        close(trainer)
    assert files(source) == before


def test_an_average_starts_as_the_source_generator_where_the_source_kept_none(tmp_path, source):
    plain = tmp_path / "plain"
    train(plain, DIGITS + ["trainer.steps=2"])
    trainer = build(tmp_path / "run", DIGITS + ["trainer.steps=2", "trainer.ema.decay=0.9", f"trainer.init_from={plain}"])
    try:
        stored = modules(plain)
        assert "generator_ema" not in stored
        average = trainer.task.modules["generator_ema"].state_dict()
        assert all(torch.equal(average[k], stored["generator"][k]) for k in stored["generator"])
    finally:
        close(trainer)


@pytest.mark.parametrize("loss", [[], ["loss=wasserstein", "loss.weight_clip=0.01"]], ids=["nsgan", "wgan clipping"])
def test_frozen_blocks_keep_the_source_weights_over_training(tmp_path, source, loss):
    """FreezeD on a fine-tuned run: D's first block is the source's after 4 steps (WGAN's clipping to
    0.01 included), it is still frozen and has no gradient; its second block and G have moved; the
    source's files are as they were; summary.json says where it started."""
    before = files(source)
    trainer = build(tmp_path, DIGITS + loss + ["trainer.steps=4", "trainer.ema.decay=0.5", "trainer.d_steps=2",
                                               f"trainer.init_from={source}", "model.discriminator.freeze=1"])
    try:
        summary = trainer.fit()
        D = trainer.acc.unwrap_model(trainer.task.modules["discriminator"])
        assert all(not p.requires_grad and p.grad is None for p in D.body[0].parameters())
    finally:
        close(trainer)
    assert summary["status"] == "finished" and summary["init_from"]["step"] == 4
    old, new = modules(source), modules(tmp_path)
    frozen = [k for k in old["discriminator"] if k.startswith("body.0.")]
    training = [k for k in old["discriminator"] if k.startswith(("body.3.", "head."))]
    assert frozen and training and max(old["discriminator"][k].abs().max() for k in frozen) > 0.01
    assert all(torch.equal(old["discriminator"][k], new["discriminator"][k]) for k in frozen)
    assert not any(torch.equal(old["discriminator"][k], new["discriminator"][k]) for k in training)
    assert not any(torch.equal(old["generator"][k], new["generator"][k]) for k in old["generator"] if "weight" in k)
    assert files(source) == before


def test_a_fine_tuning_run_resumes_its_own_checkpoint(tmp_path, source):
    """Stopped at step 2 and resumed to 4 (init_from still on the command line), it ends as the
    4 steps straight: the resume continues its checkpoint and does not start over from the source."""
    common = DIGITS + [f"trainer.init_from={source}", "model.discriminator.freeze=1", "trainer.checkpoint_every=0"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(straight, common + ["trainer.steps=4"])
    train(stopped, common + ["trainer.steps=2"])
    assert train(stopped, common + ["trainer.steps=4", "trainer.resume=auto"])["status"] == "finished"
    a, b = modules(straight), modules(stopped)
    for name in a:
        assert all(torch.equal(a[name][k], b[name][k]) for k in a[name]), name
    assert load_checkpoint(stopped)[0]["trainer"]["init_from"]["checkpoint"] == str(source / "checkpoints" / "last")


def test_cyclegan_fine_tunes_with_its_patchgan_discriminators_frozen(tmp_path):
    source = tmp_path / "source"
    train(source, CYCLE + ["trainer.steps=2"])
    train(tmp_path / "run", CYCLE + ["trainer.steps=2", f"trainer.init_from={source}", "model.discriminator.freeze=2"])
    old, new = modules(source), modules(tmp_path / "run")
    for name in ("discriminator_a", "discriminator_b"):
        frozen = [k for k in old[name] if k.startswith(("body.0.", "body.2."))]
        assert len(frozen) == 4 and all(torch.equal(old[name][k], new[name][k]) for k in frozen)
        assert not torch.equal(old[name]["body.8.weight"], new[name]["body.8.weight"])  # the head trains
    with pytest.raises(UserError) as info:  # a GAN run cannot start from CycleGAN's networks
        build(tmp_path / "gan", DIGITS + ["trainer.steps=2", f"trainer.init_from={source}"])
    assert str(info.value) == (f"trainer.init_from='{source / 'checkpoints' / 'last'}' holds the networks "
                               "discriminator_a, discriminator_b, generator_a2b, generator_b2a, and this run trains "
                               "generator, discriminator: start from a run of the same task.")


@pytest.mark.parametrize("change, shown", [
    (["model.discriminator.width=4"], "holds another discriminator than this run's (width 8 there, 4 here): "),
    (["dataset.resolution=8"], "holds another generator than this run's (out_shape [1, 16, 16] there, [1, 8, 8] here): "),
])
def test_a_source_with_other_networks_is_one_sentence(tmp_path, source, change, shown):
    before = files(source)
    with pytest.raises(UserError) as info:
        build(tmp_path, DIGITS + ["trainer.steps=2", f"trainer.init_from={source}", *change])
    message = str(info.value)
    assert message.startswith(f"trainer.init_from='{source / 'checkpoints' / 'last'}' holds another ")
    assert shown in message and message.endswith("so set model.* (and the data's shape and classes) as the source "
                                                  "run had them.") and "\n" not in message
    assert files(source) == before


def test_init_from_a_path_that_is_no_checkpoint_is_refused_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer.init_from='.*nowhere' does not exist: pass the run dir"):
        validate(compose(DIGITS + [f"trainer.init_from={tmp_path / 'nowhere'}"]))
    with pytest.raises(ConfigError, match=r"holds no complete checkpoint of this platform: pass a run dir"):
        validate(compose(DIGITS + [f"trainer.init_from={tmp_path}"]))
