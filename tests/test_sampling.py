"""Sampling a trained generator: spherical interpolation (`sample --interpolate`), truncation, and the
EMA generator preferred where a checkpoint holds one."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.evaluation import evaluate
from gan_platform.runs.checkpoint import load_checkpoint, save_checkpoint
from gan_platform.runs.generator import load_generator, slerp
from gan_platform.sample import main as sample_main


def test_slerp_keeps_the_ends_and_walks_on_the_sphere():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 64, generator=g, dtype=torch.float64), torch.randn(5, 64, generator=g, dtype=torch.float64)
    a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    path = slerp(a, b, torch.linspace(0, 1, 9))
    assert path.shape == (9, 5, 64)
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(path.norm(dim=2), torch.ones(9, 5, dtype=torch.float64))  # a straight line would dip to ~0.7
    steps = (path[1:] - path[:-1]).norm(dim=2)
    assert torch.allclose(steps, steps[:1].expand_as(steps))  # constant speed along the arc
    assert torch.allclose(slerp(a, a, torch.linspace(0, 1, 3)), a.expand(3, -1, -1))  # parallel ends: no NaN


def test_interpolate_writes_a_gif_and_its_frames_one_row_per_class(digit_run, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "walk.gif"
    assert sample_main([str(digit_run), "--interpolate", "6", "--n", "3", "--classes", "1,7", "--out", str(out)]) == 0
    gif = Image.open(out)
    assert gif.n_frames == 6
    frames = sorted((tmp_path / "walk").glob("frame_*.png"))
    assert len(frames) == 6
    first = torch.from_numpy(np.array(Image.open(frames[0]).convert("L"))).float()
    side = 16 + 2  # a 16x16 digit and the grid's padding
    assert first.shape[0] >= 2 * side and first.shape[1] >= 3 * side  # rows: classes 1 and 7; columns: 3 walks
    pictures = [torch.from_numpy(np.array(Image.open(f))).float() for f in frames]
    assert (pictures[1] - pictures[0]).abs().mean() > 0  # it moves
    with pytest.raises(SystemExit) as e:
        sample_main([str(digit_run), "--interpolate", "1", "--out", str(tmp_path / "x.gif")])
    assert e.value.code == 2


def test_interpolation_is_refused_for_points_in_one_sentence(ring_run, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as e:
        sample_main([str(ring_run), "--interpolate", "8"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and "points" in err and err.count(". ") == 0


def test_truncated_samples_are_written_by_sample(ring_run, tmp_path):  # noqa: F811
    sample_main([str(ring_run), "--n", "500", "--truncation", "0.3", "--raw", str(tmp_path / "t.pt"), "--out", str(tmp_path / "t.png")])
    sample_main([str(ring_run), "--n", "500", "--raw", str(tmp_path / "p.pt"), "--out", str(tmp_path / "p.png")])
    truncated, plain = (torch.load(tmp_path / f"{n}.pt")["samples"] for n in ("t", "p"))
    assert truncated.std(0).mean() < plain.std(0).mean()


def test_the_ema_generator_is_used_where_the_checkpoint_holds_one(ring_run, tmp_path):  # noqa: F811
    import shutil

    run = tmp_path / "run"
    shutil.copytree(ring_run, run)
    folder = run / "checkpoints" / "last"
    state, meta = load_checkpoint(folder)
    raw = state["modules"]["generator"]
    state["modules"]["generator_ema"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in raw.items()}
    save_checkpoint(folder, state, int(meta.get("step", 0)))
    ema, plain = load_generator(run), load_generator(run, raw=True)
    assert (ema.network, plain.network) == ("generator_ema", "generator")
    assert not torch.equal(ema.sample(50, seed=3), plain.sample(50, seed=3))
    assert torch.equal(plain.sample(50, seed=3), load_generator(ring_run).sample(50, seed=3))
    evaluate([run, "--num-samples", 100, "--metrics", "fid", "--name", "ema"])
    evaluate([run, "--num-samples", 100, "--metrics", "fid", "--name", "raw", "--raw"])
    protocols = [json.loads((run / f"eval_{n}.json").read_text())["protocol"]["generator"] for n in ("ema", "raw")]
    assert protocols == ["generator_ema", "generator"]


def test_interpolation_frames_are_g_of_slerp_and_walk_back(digit_run):  # noqa: F811
    """Frame i is G(slerp(z_a, z_b, t_i), c) with t = 0, 2/F, ..., 1, ..., 2/F: the walk there and back."""
    from gan_platform.sample import interpolation_frames

    trained = load_generator(digit_run)
    frames = interpolation_frames(trained, 8, walks=3, classes=[2, 5], seed=4)
    a, b = trained.noise(3, 4), trained.noise(3, 5)
    labels = torch.tensor([2, 2, 2, 5, 5, 5])
    for i, frame in enumerate(frames):
        t = torch.tensor([1 - abs(1 - 2 * i / 8)], dtype=torch.float64)
        z = slerp(a.double(), b.double(), t)[0].float()
        assert torch.allclose(frame, trained.sample(6, labels, z=z.repeat(2, 1)), atol=1e-6), i
    assert torch.allclose(frames[0], trained.sample(6, labels, z=a.repeat(2, 1)), atol=1e-6)   # starts at z_a
    assert torch.allclose(frames[4], trained.sample(6, labels, z=b.repeat(2, 1)), atol=1e-6)   # turns at z_b
    assert all(torch.equal(frames[i], frames[8 - i]) for i in range(1, 8))                    # a palindrome: it loops
    assert not torch.equal(frames[1], frames[2])
