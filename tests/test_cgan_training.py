"""Conditional GAN end to end: a short +experiment=cgan_ring8 run puts each class on its own mode and
learns to reject wrong labels; `python -m gan_platform.sample` draws any class from a trained run."""

import pytest
import torch
from PIL import Image

from helpers import TINY, run_cli, train
from gan_platform.runs.checkpoint import load_checkpoint, save_checkpoint
from gan_platform.data.mixtures import ring_means
from gan_platform.runs.rundir import read_metrics
from gan_platform.sample import load_generator, main as sample_main


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    """`python -m gan_platform +experiment=cgan_ring8`, 300 iterations (a few seconds on a CPU)."""
    run_dir = tmp_path_factory.mktemp("cgan_ring8") / "run"
    proc = run_cli(["+experiment=cgan_ring8", f"hydra.run.dir={run_dir}", "trainer.progress=false", "tracker=none",
                    "trainer.steps=300", "trainer.log_every=50", "trainer.sample_every=300", "eval.every=0"],
                   cwd=run_dir.parent, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return run_dir


def _sample_exit(args, capsys):
    with pytest.raises(SystemExit) as info:
        sample_main([str(a) for a in args])
    return info.value.code, capsys.readouterr().err.strip()


def test_each_class_lands_on_its_own_ring_mode(ring_run):
    trained = load_generator(ring_run)
    assert trained.num_classes == 8 and trained.sample_shape == (2,) and trained.step == 300
    labels = torch.arange(8).repeat_interleave(200)
    x = trained.sample(len(labels), labels, seed=3)
    nearest = torch.cdist(x, ring_means(8)).argmin(1)
    own = [(nearest[labels == c] == c).float().mean().item() for c in range(8)]
    assert min(own) >= 0.9, own


def test_d_learns_to_reject_real_points_with_the_wrong_label(ring_run):
    """D's score for (real x, wrong c) falls over training; its score for (real x, right c) does not."""
    records = [r for r in read_metrics(ring_run / "metrics.jsonl") if "train/d_wrong_label" in r]
    assert [r["step"] for r in records] == [50, 100, 150, 200, 250, 300]
    first, last = records[0], records[-1]
    assert last["train/d_wrong_label"] < first["train/d_wrong_label"] - 2.0
    assert last["train/d_real"] >= first["train/d_real"]
    assert last["train/d_real"] - last["train/d_wrong_label"] > 2.0


def test_sample_any_class_of_a_trained_run(ring_run, tmp_path, capsys):
    out, raw = tmp_path / "ring.png", tmp_path / "ring.pt"
    assert sample_main([str(ring_run), "--classes", "3,7", "--n", "16", "--out", str(out), "--raw", str(raw)]) == 0
    assert Image.open(out).size[0] > 100
    saved = torch.load(raw, weights_only=True)
    assert saved["samples"].shape == (32, 2) and saved["labels"].tolist() == [3] * 16 + [7] * 16
    means = ring_means(8)
    assert (torch.cdist(saved["samples"][:16], means).argmin(1) == 3).float().mean() >= 0.9
    assert (torch.cdist(saved["samples"][16:], means).argmin(1) == 7).float().mean() >= 0.9
    # a checkpoint folder works as well as its run dir, and gives the same samples for the same seed
    again = tmp_path / "again.pt"
    assert sample_main([str(ring_run / "checkpoints" / "last"), "--classes", "3,7", "--n", "16", "--out",
                        str(tmp_path / "again.png"), "--raw", str(again)]) == 0
    assert torch.equal(torch.load(again, weights_only=True)["samples"], saved["samples"])


@pytest.mark.parametrize("args,message", [
    (["--classes", "8"], "Class 8 is out of range: this run has 8 classes, 0..7."),
    (["--classes", "3,x"], "Class 'x' is neither a class index nor a class name of this run"),
    (["--n", "0"], "--n must be at least 1"),
])
def test_sample_refuses_bad_classes_in_one_sentence(ring_run, tmp_path, capsys, args, message):
    code, err = _sample_exit([ring_run, *args, "--out", tmp_path / "x.png"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "x.png").exists()


def test_sample_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, err = _sample_exit([tmp_path], capsys)
    assert code == 2 and "is not a gan_platform checkpoint" in err and str(tmp_path) in err
    code, err = _sample_exit([tmp_path / "missing"], capsys)
    assert code == 2 and "does not exist" in err


def test_sample_a_checkpoint_that_does_not_record_its_generator(ring_run, tmp_path):
    """Checkpoints written before they recorded G's shape: the dataset of the run's config says it."""
    import shutil

    old = tmp_path / "old_run"
    shutil.copytree(ring_run, old)
    state, meta = load_checkpoint(old / "checkpoints" / "last")
    state.pop("task")
    save_checkpoint(old / "checkpoints" / "last", state, meta["step"])
    trained = load_generator(old)
    assert trained.num_classes == 8 and trained.sample_shape == (2,)


def test_digit_grids_have_one_row_per_requested_class_and_unconditional_runs_take_no_classes(tmp_path, capsys):
    cond, uncond = tmp_path / "cgan", tmp_path / "nsgan"
    common = [*TINY, "trainer.steps=2", "trainer.sample_every=0", "eval.every=0"]
    train(cond, ["+experiment=cgan", *common])
    train(uncond, ["+experiment=nsgan", *common])
    out, raw = tmp_path / "digits.png", tmp_path / "digits.pt"
    assert sample_main([str(cond), "--classes", "3,7,9", "--n", "4", "--out", str(out), "--raw", str(raw)]) == 0
    assert torch.load(raw, weights_only=True)["samples"].shape == (12, 1, 16, 16)
    w, h = Image.open(out).size
    # 3 rows and 4 columns of 16-pixel digits with 2-pixel gaps, enlarged by a whole factor
    assert w * (3 * 18 + 2) == h * (4 * 18 + 2)
    code, err = _sample_exit([uncond, "--classes", "1"], capsys)
    assert code == 2 and "is unconditional, so it has no classes to pick: drop --classes." in err
    assert sample_main([str(uncond), "--n", "5", "--out", str(tmp_path / "u.png"), "--raw", str(tmp_path / "u.pt")]) == 0
    saved = torch.load(tmp_path / "u.pt", weights_only=True)
    assert saved["samples"].shape == (5, 1, 16, 16) and saved["labels"] is None


def test_sample_command_as_a_user_runs_it(ring_run, tmp_path):
    proc = run_cli([str(ring_run), "--classes", "3,7", "--n", "16", "--out", "grid.png"], cwd=tmp_path,
                   module="gan_platform.sample", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "grid.png").exists() and "wrote grid.png" in proc.stdout
    proc = run_cli([str(ring_run), "--classes", "12"], cwd=tmp_path, module="gan_platform.sample", timeout=120)
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("gan_platform: error: Class 12 is out of range")
