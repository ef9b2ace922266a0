"""An image folder larger than memory streams from disk through DataLoader workers: the same seed
trains on the same images in the same order as the in-memory set, bit for bit, and a streamed run
resumes exactly; unreadable files follow dataset.on_corrupt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY, train
from gan_platform.data.folders import image_folder
from gan_platform.data.streaming import StreamingImages
from gan_platform.errors import UserError
from gan_platform.runs.checkpoint import load_checkpoint


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for c, name in enumerate(("circles", "squares")):
        (root / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) // (c + 1)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


def run_on(folder, run_dir, stream, steps, resume=False):
    overrides = [*TINY, "dataset=image_folder", f"dataset.root={folder}", "dataset.resolution=16", "dataset.channels=3",
                 f"dataset.stream={stream}", "dataset.workers=2", "model=dcgan", "model.generator.width=8",
                 "model.discriminator.width=8", "model.z_dim=8", "trainer.batch_size=8", "trainer.log_every=2",
                 "trainer.sample_every=0", "trainer.checkpoint_every=2", "eval.every=0", "eval.num_samples=16",
                 "eval.features=identity", f"trainer.steps={steps}", "seed=3"] + (["trainer.resume=auto"] if resume else [])
    return train(run_dir, overrides)


def weights(run_dir):
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    return state["modules"]


def test_auto_streams_only_a_set_larger_than_the_threshold(folder):
    assert not isinstance(image_folder(str(folder), resolution=16), StreamingImages)
    streamed = image_folder(str(folder), resolution=16, stream_above_mb=0.01)  # 24 x 3 x 16 x 16 bytes > 10 kB
    assert isinstance(streamed, StreamingImages) and len(streamed) == 24 and streamed.num_classes == 2
    assert streamed.sample_shape == (3, 16, 16) and streamed.class_names == ["circles", "squares"]


def test_streaming_draws_the_in_memory_batches(folder):
    memory = image_folder(str(folder), resolution=16, stream=False)
    streamed = image_folder(str(folder), resolution=16, stream=True, workers=2)
    ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for n in (6, 6, 6, 4, 4):  # a change of batch size re-plans the read-ahead
        (xa, ya), (xb, yb) = memory.sample(n, ga), streamed.sample(n, gb)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    gb.manual_seed(9)  # the generator moved behind the dataset's back (a resume): the plan restarts from it
    ga.manual_seed(9)
    assert torch.equal(memory.sample(4, ga)[0], streamed.sample(4, gb)[0])
    real, labels = streamed.all(limit=10)
    expected, expected_labels = memory.all(limit=10)
    assert torch.equal(real, expected) and torch.equal(labels, expected_labels)


@pytest.mark.slow
def test_a_streamed_run_equals_the_in_memory_run_and_resumes_exactly(folder, tmp_path):
    run_on(folder, tmp_path / "memory", "false", 4)
    run_on(folder, tmp_path / "stream", "true", 4)
    run_on(folder, tmp_path / "resumed", "true", 2)
    run_on(folder, tmp_path / "resumed", "true", 4, resume=True)
    a, b, c = weights(tmp_path / "memory"), weights(tmp_path / "stream"), weights(tmp_path / "resumed")
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)
            assert torch.equal(a[net][key], c[net][key]), (net, key)


def test_an_unreadable_file_is_skipped_or_named(folder, caplog):
    bad = folder / "circles" / "05.png"
    bad.write_bytes(b"not a picture")
    skip = image_folder(str(folder), resolution=16, stream=True, workers=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        x, _ = skip.sample(8, g)
        assert x.shape == (8, 3, 16, 16) and torch.isfinite(x).all()
    assert sum("Unreadable image" in r.message and "05.png" in r.message for r in caplog.records) == 1
    strict = image_folder(str(folder), resolution=16, stream=True, workers=0, on_corrupt="error")
    g = torch.Generator().manual_seed(0)
    with pytest.raises(UserError, match="Cannot read image '.*05.png': remove or replace it"):
        for _ in range(20):
            strict.sample(8, g)
