"""The real statistics: `eval.num_real: auto` is capped by `eval.num_real_cap` for Inception on
images, with a fixed seeded subset that is the same in every run and spread over the whole set."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY, train
from gan_platform.data.base import TensorDataset
from gan_platform.data.folders import image_folder
from gan_platform.evaluation.build import default_num_real
from helpers.evaluation import inception_shaped_weights

CLASSES, PER_CLASS = ("a", "b", "c"), 20


def _class_blocks(n_per_class: int = PER_CLASS) -> TensorDataset:
    """Images stored class by class, as an image folder stores them; pixel values tell them apart."""
    x = torch.arange(len(CLASSES) * n_per_class, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()
    labels = torch.arange(len(CLASSES)).repeat_interleave(n_per_class)
    return TensorDataset("blocks", x, labels, num_classes=len(CLASSES))


def test_a_limited_real_set_is_a_fixed_subset_spread_over_the_whole_set():
    data = _class_blocks()
    x1, y1 = data.all(12)
    x2, y2 = _class_blocks().all(12)  # another dataset object, as in another run
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and len(x1) == 12
    stored = ((x1[:, 0, 0, 0] + 1) * 127.5).round().long()  # decoded back to the stored values
    assert len(set(stored.tolist())) == 12 and stored.tolist() == sorted(stored.tolist())  # distinct, stored order
    assert set(y1.tolist()) == {0, 1, 2}  # not just the first class, as the first 12 files would be
    assert torch.equal(y1, data.labels[stored])  # each label stays with its image
    whole, labels = data.all(None)
    assert len(whole) == 60 and torch.equal(labels, data.labels) and torch.equal(data.all(500)[0], whole)


def test_auto_caps_only_inception_on_images_and_keeps_small_sets_whole():
    images = _class_blocks()  # 60 images
    points = TensorDataset("pts", torch.randn(60, 2), kind="points")
    assert default_num_real(images, "inception", 12) == 12
    assert default_num_real(images, "inception", 60) is None and default_num_real(images, "inception", 10000) is None
    assert default_num_real(images, "inception", None) is None  # eval.num_real_cap=null: all of them
    assert default_num_real(images, "digits", 12) is None and default_num_real(points, "identity", 12) is None


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    return inception_shaped_weights(tmp_path_factory.mktemp("inception") / "inception.pth")


@pytest.mark.slow
def test_runs_with_inception_record_the_capped_count_and_the_same_real_subset(tmp_path, inception_file):
    root = tmp_path / "folder"
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    overrides = [*TINY, "dataset=image_folder", f"dataset.root={root}", "dataset.resolution=8", "model=dcgan",
                 "model.generator.width=8", "model.discriminator.width=8", "trainer.steps=1", "trainer.sample_every=0",
                 "eval.every=0", "eval.features=inception", f"eval.inception_weights={inception_file}",
                 "eval.num_samples=4", "eval.num_real_cap=12", "eval.inception_download=false"]
    protocols = []
    for seed in (0, 1):
        train(tmp_path / f"run{seed}", overrides + [f"seed={seed}"])
        protocols.append(json.loads((tmp_path / f"run{seed}" / "summary.json").read_text())["protocol"])
    first, second = protocols
    assert first["extractor"] == "inception" and first["num_real"] == second["num_real"] == 12
    assert "12 of 60 stored samples" in first["real_split"] and "num_real_cap" in first["real_split"]
    assert len(first["real_sha256"]) == 64 and first["real_sha256"] == second["real_sha256"]  # the same real images
    # and they are the seeded subset, not the first 12 files (all of class "a")
    data = image_folder(str(root), resolution=8)

    def sha(x):
        return hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest()

    assert first["real_sha256"] == sha(data.all(12)[0]) != sha(data.decode(data.x[:12]))


def test_pixels_decode_to_the_float32_product_every_device_computes():
    """decode_uint8 is x * float32(1/127.5) - 1 in float32, the arithmetic CUDA uses for a division
    by a scalar; CPU division differs by one ulp on some pixels, which changed real_sha256 on a GPU."""
    from gan_platform.data.base import decode_uint8

    pixels = np.arange(256, dtype=np.uint8)
    product = pixels.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1)
    decoded = decode_uint8(torch.from_numpy(pixels)).numpy()
    assert decoded.dtype == np.float32 and np.array_equal(decoded, product)
    assert decoded[0] == -1 and decoded[255] == 1 and np.abs(decoded - (pixels / 127.5 - 1)).max() < 2.5e-7  # 2 ulp at 1
    divided = torch.from_numpy(pixels).float().div(127.5).sub(1.0).numpy()
    assert (divided != product).sum() > 0  # the division the CPU used before: not the same bits
