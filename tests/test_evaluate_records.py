"""What a first-time user met with `gan_platform.evaluate` (issue 27), each as the user's command:
an evaluation never replaces an earlier one, a run where no requested metric applies says so and
exits non-zero, raw-pixel reference statistics are refused, the numbers say what they mean (KID's
scale, the sample counts behind precision/recall), and the command shows its progress."""

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY, train
from helpers.evaluation import evaluate
from gan_platform.evaluate import main as evaluate_main


def _fails(args, capsys):
    """Run the command expecting one sentence and exit code 2; that sentence."""
    with pytest.raises(SystemExit) as e:
        evaluate_main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()[-1].removeprefix("gan_platform: error: ")
    assert e.value.code == 2 and err.endswith(".") and err.count(". ") == 0, err
    return err


def test_re_evaluating_never_replaces_an_earlier_evaluation(digit_run, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "run"
    __import__("shutil").copytree(digit_run, run)
    args = [run, "--num-samples", 120, "--seeds", 2]
    _, first = evaluate(args, capsys)
    before = (run / "eval_last_generator_120.json").read_bytes()
    _, second = evaluate([*args[:-1], 3], capsys)   # the same checkpoint and count, other sets
    assert (first, second) == (str(run / "eval_last_generator_120.json"), str(run / "eval_last_generator_120_2.json"))
    assert (run / "eval_last_generator_120.json").read_bytes() == before
    assert len(json.loads(before)["metrics"]["eval/fid"]["values"]) == 2
    assert len(json.loads((run / "eval_last_generator_120_2.json").read_text())["metrics"]["eval/fid"]["values"]) == 3
    (run / "summary.json").write_text(json.dumps({"status": "finished"}))
    (run / "report.html").write_text("a dashboard")   # a run with a dashboard: evaluate rebuilds it
    evaluate([run, "--num-samples", 120, "--name", "paper"], capsys)
    kept = (run / "eval_paper.json").read_bytes()
    err = _fails([run, "--num-samples", 60, "--name", "paper"], capsys)
    assert "eval_paper.json already exists" in err and "--name" in err and (run / "eval_paper.json").read_bytes() == kept
    # the memorisation picture beside each record, and the run's dashboard lists them all
    picture = Image.open(run / "eval_last_generator_120_2_nearest_neighbours.png")
    assert picture.size[1] > 8 * 64 and json.loads((run / "eval_last_generator_120_2.json").read_text())[
        "nearest_neighbours"]["picture"] == "eval_last_generator_120_2_nearest_neighbours.png"
    page = (run / "report.html").read_text()
    assert "Evaluations after training" in page and page.count('src="eval_') == 3
    assert all(f'href="eval_{n}.json"' in page for n in ("last_generator_120", "last_generator_120_2", "paper"))


@pytest.fixture
def photo_run(tmp_path, monkeypatch):
    """An image-folder run with no Inception weights on disk: its features are the pixels."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    rng = np.random.default_rng(0)
    (tmp_path / "photos").mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / "photos" / f"{i}.png")
    train(tmp_path / "run", [*TINY, "dataset=image_folder", f"dataset.root={tmp_path / 'photos'}", "dataset.resolution=16",
                             "model=dcgan", "model.generator.width=8", "model.discriminator.width=8", "trainer.steps=2",
                             "trainer.sample_every=0", "eval.num_samples=20"])
    return tmp_path / "run"


def test_no_metric_that_applies_is_one_sentence_and_nothing_is_overwritten(photo_run, tmp_path, capsys, caplog):
    """The user's case: an image-folder run without Inception weights, `--seeds 3 --ref ref.npz`."""
    from gan_platform.evaluation.reference import ReferenceStats, save_reference

    with caplog.at_level(logging.WARNING):
        evaluate([photo_run, "--num-samples", 40, "--seeds", 3], capsys)  # the pixel metrics that hold
    earlier = json.loads((photo_run / "eval_last_generator_ema_40.json").read_text())
    assert "eval/pixel_precision" in earlier["metrics"] and "eval/fid" not in earlier["metrics"]
    files = sorted(p.name for p in photo_run.iterdir())
    pixels = torch.rand(30, 3 * 16 * 16)   # what the old --save-ref wrote: statistics of raw pixels
    save_reference(tmp_path / "ref.npz", ReferenceStats.of(pixels, {"extractor": "identity", "num_features": 768}))
    err = _fails([photo_run, "--num-samples", 40, "--seeds", 3, "--ref", tmp_path / "ref.npz"], capsys)
    assert err.startswith("No metric can be measured here, so nothing was written") and "--ref" in err and "Inception" in err
    assert sorted(p.name for p in photo_run.iterdir()) == files
    assert json.loads((photo_run / "eval_last_generator_ema_40.json").read_text()) == earlier
    err = _fails([photo_run, "--save-ref", tmp_path / "pixels.npz"], capsys)
    assert "768 features, a 5 MB covariance" in err and "nothing was written" in err and not (tmp_path / "pixels.npz").exists()


def test_the_protocol_says_what_kid_and_precision_mean_and_progress_is_shown(digit_run, capsys):  # noqa: F811
    assert evaluate_main([str(digit_run), "--num-samples", "150", "--seeds", "2", "--name", "progress", "--metrics", "fid,kid,prdc"]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("evaluate: ")]
    assert len(lines) == 4 and "2 set(s) of 150 samples" in lines[0] and lines[-1].startswith("evaluate: set 2 of 2: 150 samples")
    protocol = json.loads((digit_run / "eval_progress.json").read_text())["protocol"]
    assert "unscaled" in protocol["kid_scale"] and "x 1000" in protocol["kid_scale"]
    assert "num_fake_used" in protocol["prdc_counts"] and (protocol["num_fake_used"], protocol["num_real"]) == (150, 1797)


def test_checkpoint_best_and_seed_pick_the_checkpoint_and_the_sets(digit_run, tmp_path):  # noqa: F811
    """--checkpoint best measures checkpoints/best (here an older, different state); --seed S is the
    set --seed 0 --seeds S+1 measures last."""
    import shutil

    from gan_platform.runs.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    shutil.copytree(digit_run, run)
    state, _ = load_checkpoint(run / "checkpoints" / "last")
    state["modules"]["generator"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in state["modules"]["generator"].items()}
    save_checkpoint(run / "checkpoints" / "best", state, 2)
    for args in (["--name", "last"], ["--checkpoint", "best", "--name", "best"], ["--seeds", 2, "--name", "two"],
                 ["--seed", 1, "--name", "seed1"]):
        evaluate([run, "--num-samples", 100, "--metrics", "fid,class_accuracy", *args])
    last, best, two, seed1 = (json.loads((run / f"eval_{n}.json").read_text()) for n in ("last", "best", "two", "seed1"))
    assert (best["protocol"]["step"], last["protocol"]["step"]) == (2, 3)
    assert best["protocol"]["checkpoint"].endswith("best") and last["protocol"]["checkpoint"].endswith("last")
    assert best["metrics"]["eval/fid"]["mean"] != pytest.approx(last["metrics"]["eval/fid"]["mean"], rel=1e-3)
    assert two["protocol"]["seeds"] == [0, 1] and seed1["protocol"]["seeds"] == [1]
    assert two["metrics"]["eval/fid"]["values"][0] == last["metrics"]["eval/fid"]["mean"]
    assert seed1["metrics"]["eval/fid"]["values"] == [two["metrics"]["eval/fid"]["values"][1]]
