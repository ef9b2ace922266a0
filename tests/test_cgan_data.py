"""Labelled data from disk: image folders and torchvision's MNIST, Fashion-MNIST and CIFAR-10 formats,
written here as small files in the real formats and read without network."""

import gzip
import logging
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import TINY, compose, run_cli, train
from gan_platform.data.folders import image_folder
from gan_platform.data.torchvision_sets import cifar10, fashion_mnist, mnist
from gan_platform.errors import ConfigError, UserError
from gan_platform.errors import instantiate


def _png(path, color, size=(40, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / "pets"
    for i in range(3):
        _png(root / "cat" / f"{i}.png", (255, 0, 0))
    _png(root / "dog" / "a.jpg", (0, 0, 255))
    _png(root / "dog" / "b.png", (0, 0, 255))
    (root / "dog" / "broken.png").write_bytes(b"not a png at all")
    (root / "empty").mkdir()
    return root


def test_class_subfolders_are_labels_and_corrupt_files_are_skipped(class_folders, caplog):
    with caplog.at_level(logging.WARNING):
        ds = image_folder(str(class_folders), resolution=16, channels=3)
    assert ds.class_names == ["cat", "dog"] and ds.num_classes == 2 and ds.labelled
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (5, 3, 16, 16)
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]
    assert ds.x[:3, 0].float().mean() == 255 and ds.x[:3, 2].float().mean() == 0  # red cats
    assert ds.x[3:, 2].float().mean() > 250 and ds.x[3:, 0].float().mean() < 5    # blue dogs
    assert "Skipped 1 unreadable image(s) of 6" in caplog.text and "broken.png" in caplog.text
    grey = image_folder(str(class_folders), resolution=8, channels=1)
    assert grey.x.shape == (5, 1, 8, 8)


def test_a_corrupt_file_is_refused_by_name_when_asked(class_folders):
    with pytest.raises(UserError, match=r"Cannot read image '.*broken.png'.*dataset.on_corrupt=skip"):
        image_folder(str(class_folders), resolution=16, on_corrupt="error")


def test_images_directly_in_root_are_unlabelled_and_refused_for_a_conditional_run(tmp_path):
    for i in range(4):
        _png(tmp_path / "faces" / f"{i}.png", (10 * i, 20, 30), size=(20, 20))
    ds = image_folder(str(tmp_path / "faces"), resolution=8)
    assert not ds.labelled and ds.num_classes is None and ds.x.shape == (4, 3, 8, 8)
    with pytest.raises(ConfigError, match="needs labelled data, and dataset 'image_folder' has no labels"):
        train(tmp_path / "run", ["+experiment=cgan", *TINY, "dataset=image_folder", f"dataset.root={tmp_path / 'faces'}",
                                 "dataset.resolution=8", "trainer.steps=1"])


@pytest.mark.parametrize("make,message", [
    (lambda root: None, "does not exist: point dataset.root at a folder of images"),
    (lambda root: root.mkdir(), "holds no images"),
    (lambda root: (root.mkdir(), (root / "notes.txt").write_text("x")), "holds no images"),
])
def test_missing_or_empty_folders_are_one_sentence_naming_the_path(tmp_path, make, message):
    root = tmp_path / "nowhere"
    make(root)
    with pytest.raises(UserError, match=message) as info:
        image_folder(str(root))
    assert str(root) in str(info.value) and str(info.value).count(". ") == 0


def test_mixed_folder_and_unset_root_are_refused(class_folders):
    _png(class_folders / "loose.png", (0, 0, 0))
    with pytest.raises(UserError, match="both images and class subfolders"):
        image_folder(str(class_folders))
    with pytest.raises(ConfigError, match="dataset.root is not set: add dataset.root=PATH"):
        image_folder(None)


def test_a_conditional_run_trains_on_an_image_folder(class_folders, tmp_path):
    cfg = compose(["+experiment=cgan", "dataset=image_folder", f"dataset.root={class_folders}"])
    assert cfg.dataset.on_corrupt == "skip" and cfg.dataset.channels == 3
    overrides = ["+experiment=cgan", *TINY, "dataset=image_folder", f"dataset.root={class_folders}",
                 "dataset.resolution=8", "trainer.steps=2", "trainer.sample_every=2", "eval.every=0"]
    summary = train(tmp_path / "run", overrides)
    assert summary["status"] == "finished"
    raw = torch.load(tmp_path / "run" / "samples" / "step_000002.pt", weights_only=True)
    assert raw["samples"].shape == (16, 3, 8, 8) and raw["labels"].tolist() == [0] * 8 + [1] * 8
    # the class names of the folders pick classes when sampling the trained run
    from gan_platform.sample import main as sample_main

    assert sample_main([str(tmp_path / "run"), "--classes", "dog,cat", "--n", "3", "--out", str(tmp_path / "s.png"),
                        "--raw", str(tmp_path / "s.pt")]) == 0
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    assert saved["labels"].tolist() == [1, 1, 1, 0, 0, 0] and saved["samples"].shape == (6, 3, 8, 8)


# -- torchvision formats --------------------------------------------------------------------------
def _idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">IIII", 0x0803, len(images), 28, 28) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes()


def _write_mnist(raw, n_train=12, n_test=4, compress=True):
    """The four MNIST files; image i is a flat grey value 20 * label."""
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = np.repeat((20 * labels)[:, None, None], 28, 1).repeat(28, 2)
        for name, data in ((f"{prefix}-images-idx3-ubyte", _idx_images(images)), (f"{prefix}-labels-idx1-ubyte", _idx_labels(labels))):
            if compress:
                with gzip.open(raw / f"{name}.gz", "wb") as f:
                    f.write(data)
            else:
                (raw / name).write_bytes(data)


def test_mnist_from_gz_idx_files_as_downloaded(tmp_path):
    _write_mnist(tmp_path / "MNIST" / "raw")
    ds = mnist(str(tmp_path), resolution=32)
    assert ds.x.shape == (12, 1, 32, 32) and ds.x.dtype == torch.uint8
    assert ds.labels.tolist() == [i % 10 for i in range(12)] and ds.num_classes == 10
    assert ds.class_names[3] == "3 - three"
    assert torch.equal(ds.x[:, 0, 16, 16], (20 * ds.labels).to(torch.uint8))  # flat images stay flat when resized
    test = mnist(str(tmp_path), train=False, resolution=28)
    assert test.x.shape == (4, 1, 28, 28)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_gz_file_is_one_sentence_and_leaves_no_half_unpacked_file(tmp_path, damage):
    raw = tmp_path / "MNIST" / "raw"
    _write_mnist(raw)
    gz = raw / "train-images-idx3-ubyte.gz"
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not gzip at all" * 10)
    with pytest.raises(UserError) as info:
        mnist(str(tmp_path))
    text = str(info.value)
    assert str(gz) in text and "dataset.download=true" in text and "\n" not in text
    assert not (raw / "train-images-idx3-ubyte").exists() and not (raw / "train-images-idx3-ubyte.part").exists()
    assert gz.exists()  # the user's file is left for them to inspect


def test_fashion_mnist_from_unpacked_idx_files(tmp_path):
    _write_mnist(tmp_path / "FashionMNIST" / "raw", compress=False)
    ds = fashion_mnist(str(tmp_path), resolution=16)
    assert ds.x.shape == (12, 1, 16, 16) and ds.class_names[0] == "T-shirt/top" and ds.labelled


@pytest.mark.parametrize("loader,folder", [(mnist, "MNIST/raw"), (fashion_mnist, "FashionMNIST/raw"),
                                           (cifar10, "cifar-10-batches-py")])
def test_missing_torchvision_files_name_the_folder_and_the_download_option(tmp_path, loader, folder):
    with pytest.raises(UserError) as info:
        loader(str(tmp_path / "data"))
    text = str(info.value)
    assert str(tmp_path / "data" / folder) in text and "dataset.download=true" in text
    assert text.count(": ") == 1 and text.endswith(".")


def _write_cifar(folder, n=6):
    """CIFAR-10's python batches: 'data' (n, 3072) uint8 in R, G, B planes, 'labels' a list."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for b, name in enumerate(names):
        labels = [(b + i) % 10 for i in range(n)]
        data = np.zeros((n, 3, 32, 32), np.uint8)
        data[:, 0] = 200  # red plane
        data[:, 2] = np.array(labels, np.uint8)[:, None, None] * 10  # blue plane encodes the label
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": data.reshape(n, -1), "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                     "truck"], "num_vis": 3072}, f)


def test_cifar10_python_batches(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    # files of the right format but not torchvision's own bytes fail its MD5 check, with a way out
    with pytest.raises(UserError, match="fail torchvision's checksums.*dataset.verify_checksums=false"):
        cifar10(str(tmp_path))
    ds = cifar10(str(tmp_path), verify_checksums=False)
    assert ds.x.shape == (30, 3, 32, 32) and ds.class_names[9] == "truck"
    assert torch.all(ds.x[:, 0] == 200) and torch.all(ds.x[:, 1] == 0)
    assert torch.equal(ds.x[:, 2, 5, 5], (ds.labels * 10).to(torch.uint8))
    test = cifar10(str(tmp_path), train=False, verify_checksums=False, resolution=16)
    assert test.x.shape == (6, 3, 16, 16) and test.labels.tolist() == [(5 + i) % 10 for i in range(6)]


def test_torchvision_datasets_compose_and_build(tmp_path):
    _write_mnist(tmp_path / "MNIST" / "raw")
    cfg = compose(["+experiment=cgan", "dataset=mnist", f"dataset.root={tmp_path}"])
    assert cfg.dataset.download is False and cfg.dataset.resolution == 32
    ds = instantiate(cfg.dataset)
    assert ds.name == "mnist" and len(ds) == 12
    for name in ("fashion_mnist", "cifar10"):
        assert compose([f"dataset={name}"]).dataset.download is False


def test_missing_mnist_from_the_command_line_is_one_sentence(tmp_path):
    proc = run_cli(["+experiment=cgan", "dataset=mnist", f"dataset.root={tmp_path / 'data'}", "trainer.progress=false"],
                   cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("gan_platform: error: mnist is not in") and "dataset.download=true" in lines[0]
