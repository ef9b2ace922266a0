"""Real short runs: every experiment trains, the run dir is complete, resume and seeds are exact."""

import json

import pytest
import torch
from PIL import Image

from helpers import EXPERIMENTS, TINY, compose, train
from helpers.experiments import tiny_experiment
from gan_platform.runs.checkpoint import load_checkpoint
from gan_platform.runs.rundir import read_metrics

RING = TINY + ["dataset=ring8", "model=mlp", "model.generator.hidden=32", "model.discriminator.hidden=32"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_trains(tmp_path, experiment):
    cfg = compose([f"+experiment={experiment}"])
    assert cfg.name == experiment and cfg.get("name") == experiment
    if experiment == "horse2zebra":
        pytest.skip("needs the downloaded set; test_cyclegan.py runs this bundle on small image folders")
    overrides = tiny_experiment(experiment, tmp_path) + ["trainer.steps=3", "trainer.log_every=1"]
    if cfg.task.name != "gan" or cfg.dataset._target_.endswith("digits"):
        overrides += ["trainer.sample_every=0", "eval.every=0"]
    summary = train(tmp_path / "run", overrides)
    assert summary["status"] == "finished" and summary["step"] == 3
    records = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "train/g_loss" in r or "train/loss_g" in r]
    assert [r["step"] for r in records] == [1, 2, 3]


def test_experiment_bundles_set_the_variant():
    wgan = compose(["+experiment=wgan"])
    assert (wgan.loss.name, wgan.loss.weight_clip, wgan.trainer.d_steps) == ("wasserstein", 0.01, 5)
    assert wgan.optimizer._target_ == "torch.optim.RMSprop" and wgan.dataset._target_.endswith("digits")
    gp = compose(["+experiment=wgan_gp"])
    assert (gp.loss.gradient_penalty, gp.loss.weight_clip, gp.trainer.d_steps) == (10.0, 0.0, 5)
    assert compose(["+experiment=gan"]).loss.name == "minimax"
    assert compose(["+experiment=nsgan"]).loss.name == "nonsaturating"
    assert compose(["+experiment=hinge"]).loss.name == "hinge"
    assert compose(["+experiment=lsgan"]).loss.name == "least_squares"
    # command-line choices win over the bundle's
    cfg = compose(["+experiment=wgan", "dataset=ring8", "model=mlp", "optimizer.lr=1e-4"])
    assert cfg.dataset._target_.endswith("ring8") and cfg.optimizer.lr == 1e-4


def test_run_dir_contract(tmp_path):
    summary = train(tmp_path, RING + ["trainer.steps=20", "trainer.log_every=5", "trainer.sample_every=10",
                                      "trainer.checkpoint_every=10"])
    assert summary["status"] == "finished"
    records = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "train/d_loss" in r]
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert {"train/d_loss", "train/g_loss", "perf/it_per_s"} <= set(records[0])
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "finished" and s["step"] == 20 and s["final"]["train/d_loss"] == records[-1]["train/d_loss"]
    for step in (0, 10, 20):
        png = tmp_path / "samples" / f"step_{step:06d}.png"
        assert Image.open(png).size[0] >= 256
        raw = torch.load(tmp_path / "samples" / f"step_{step:06d}.pt", weights_only=True)
        assert raw["samples"].shape == (1000, 2)  # 2-D points: at least 1,000 for the scatter plot
    state, meta = load_checkpoint(tmp_path / "checkpoints" / "last")
    assert meta["step"] == 20 == state["step"]
    assert not list((tmp_path / "checkpoints").glob("*.tmp")) and not list((tmp_path / "checkpoints").glob("*.prev"))


def test_image_samples_grid_and_raw(tmp_path):
    train(tmp_path, TINY + ["+experiment=nsgan", "trainer.steps=2", "trainer.sample_every=2", "eval.every=0"])
    raw = torch.load(tmp_path / "samples" / "step_000002.pt", weights_only=True)
    assert raw["samples"].shape == (16, 1, 16, 16)
    assert raw["samples"].min() >= -1 and raw["samples"].max() <= 1
    img = Image.open(tmp_path / "samples" / "step_000002.png")
    assert img.mode == "RGB" and min(img.size) >= 256


def test_a_conditional_grid_names_its_class_rows(tmp_path):
    """One row per class, each named in a white margin on its left: the picture is the image grid
    with the margin added, and every row band of the margin holds dark (text) pixels."""
    import numpy as np

    from gan_platform.tracking.pictures import image_grid, upscale

    train(tmp_path, TINY + ["+experiment=cgan", "trainer.steps=1", "trainer.sample_every=1", "trainer.grid_size=20",
                            "eval.every=0", "model.generator.width=8", "model.discriminator.width=8"])
    raw = torch.load(tmp_path / "samples" / "step_000001.pt", weights_only=True)
    assert raw["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    picture = np.asarray(Image.open(tmp_path / "samples" / "step_000001.png"))
    grid = upscale(image_grid(raw["samples"], rows=10))
    margin = picture.shape[1] - grid.shape[1]
    assert picture.shape[0] == grid.shape[0] and 10 < margin < 100
    assert np.array_equal(picture[:, margin:], grid)  # the samples themselves, untouched
    bands = np.array_split(picture[:, :margin].min(axis=2), 10)
    assert all(band.min() < 100 for band in bands)  # a label in every row
    assert picture[:, :margin].mean() > 200  # and otherwise white


def _params(run_dir):
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    return state["modules"]


def test_same_seed_same_bits_and_other_seed_differs(tmp_path):
    args = RING + ["trainer.steps=15", "seed=3"]
    train(tmp_path / "a", args)
    train(tmp_path / "b", args)
    train(tmp_path / "c", RING + ["trainer.steps=15", "seed=4"])
    a, b, c = _params(tmp_path / "a"), _params(tmp_path / "b"), _params(tmp_path / "c")
    for net in ("generator", "discriminator"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), k
    assert not torch.equal(a["generator"]["out.weight"], c["generator"]["out.weight"])


@pytest.mark.parametrize("experiment", ["wgan", "wgan_gp"])
def test_resume_continues_bit_for_bit(tmp_path, experiment):
    """Stop at step 6, resume to 12: same parameters, optimizer state and metrics as 12 straight."""
    common = RING + [f"+experiment={experiment}", "seed=7", "trainer.log_every=3", "trainer.sample_every=0",
                     "trainer.checkpoint_every=0", "trainer.d_steps=2",
                     "model.discriminator.dropout=0.2"]
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(straight, common + ["trainer.steps=12"])
    first = train(stopped, common + ["trainer.steps=6"])
    assert first["step"] == 6
    resumed = train(stopped, common + ["trainer.steps=12", "trainer.resume=auto"])
    assert resumed["status"] == "finished" and resumed["step"] == 12
    a, b = _params(straight), _params(stopped)
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    sa, _ = load_checkpoint(straight / "checkpoints" / "last")
    sb, _ = load_checkpoint(stopped / "checkpoints" / "last")
    assert sa["optimizers"]["generator"]["state"][0]["square_avg" if experiment == "wgan" else "exp_avg_sq"].equal(
        sb["optimizers"]["generator"]["state"][0]["square_avg" if experiment == "wgan" else "exp_avg_sq"])
    assert sa["schedulers"] == sb["schedulers"]
    ma = [r for r in read_metrics(straight / "metrics.jsonl") if "train/d_loss" in r]
    mb = [r for r in read_metrics(stopped / "metrics.jsonl") if "train/d_loss" in r]
    assert [r["step"] for r in mb] == [3, 6, 9, 12]
    for ra, rb in zip(ma, mb):
        assert ra["train/d_loss"] == rb["train/d_loss"]


def test_resume_from_a_metrics_file_with_later_steps_keeps_each_step_once(tmp_path):
    common = RING + ["trainer.log_every=2", "trainer.sample_every=0", "trainer.checkpoint_every=4"]
    train(tmp_path, common + ["trainer.steps=4"])
    # as if the run had gone on to log step 6 and a torn line, then been killed
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "train/d_loss": 1.0}\n{"step": 8, "train/d_lo')
    train(tmp_path, common + ["trainer.steps=8", "trainer.resume=auto"])
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if "train/d_loss" in r]
    assert steps == [2, 4, 6, 8]


def test_train_one_side_more_counts_steps(tmp_path):
    """d_steps critic updates and g_steps generator updates per iteration."""
    summary = train(tmp_path, RING + ["trainer.steps=3", "trainer.d_steps=4", "trainer.g_steps=2"])
    state, _ = load_checkpoint(tmp_path / "checkpoints" / "last")
    assert state["optimizers"]["discriminator"]["state"][0]["step"].item() == 12
    assert state["optimizers"]["generator"]["state"][0]["step"].item() == 6
    assert summary["step"] == 3
