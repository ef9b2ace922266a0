"""Every input format gan-dataset reads, made small on disk in the real format (no download), and a
zip written the way stylegan2-ada's dataset tool writes one (Pillow's PNGs, its names, labels only)."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image


def pixels(rng: np.random.Generator, h: int, w: int, channels: int = 3) -> np.ndarray:
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def make_folder(root: Path, classes: dict[str, int], size: tuple[int, int] = (12, 10), seed: int = 0,
                suffix: str = ".png") -> dict[str, np.ndarray]:
    """root/<class>/<i>.png for each class (or images in root for the class ''): {relative path: pixels}."""
    rng, out = np.random.default_rng(seed), {}
    for name, count in classes.items():
        folder = root / name if name else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            arr = pixels(rng, size[1], size[0])
            Image.fromarray(arr).save(folder / f"{i:03d}{suffix}")
            out[(folder / f"{i:03d}{suffix}").relative_to(root).as_posix()] = arr
    return out


def _cifar_pickle(obj: dict) -> bytes:
    return pickle.dumps(obj, protocol=2)


def make_cifar10(root: Path, per_batch: int = 3, tarball: bool = False, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """CIFAR-10's python version (5 train batches, test_batch, batches.meta) with `per_batch` images
    each: (the folder or tarball, train images (N, 32, 32, 3), train labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images, labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        lab = rng.integers(0, 10, per_batch).tolist()
        (folder / name).write_bytes(_cifar_pickle({"batch_label": name, "data": data, "labels": lab}))
        if name != "test_batch":
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels += lab
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(_cifar_pickle({"label_names": names, "num_vis": 3072}))
    if not tarball:
        return folder, np.concatenate(images), np.array(labels)
    path = root / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path, np.concatenate(images), np.array(labels)


def make_cifar100(root: Path, count: int = 4, seed: int = 1) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """CIFAR-100's python version (train, test, meta): (folder, train images, fine, coarse labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out = {}
    for name in ("train", "test"):
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        fine, coarse = rng.integers(0, 100, count).tolist(), rng.integers(0, 20, count).tolist()
        (folder / name).write_bytes(_cifar_pickle({"data": data, "fine_labels": fine, "coarse_labels": coarse}))
        out[name] = (data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.array(fine), np.array(coarse))
    meta = {"fine_label_names": [f"fine{i}" for i in range(100)], "coarse_label_names": [f"coarse{i}" for i in range(20)]}
    (folder / "meta").write_bytes(_cifar_pickle(meta))
    return (folder, *out["train"])


def make_idx(folder: Path, prefix: str = "train", count: int = 5, gz: bool = True, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's idx files {prefix}-images-idx3-ubyte[.gz] and -labels-idx1-ubyte[.gz] of 28 x 28 images."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    files = {f"{prefix}-images-idx3-ubyte": struct.pack(">IIII", 0x803, count, 28, 28) + images.tobytes(),
             f"{prefix}-labels-idx1-ubyte": struct.pack(">II", 0x801, count) + labels.tobytes()}
    for name, data in files.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


def encode(arr: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def make_lmdb(folder: Path, count: int = 4, seed: int = 3) -> list[np.ndarray]:
    """An LSUN-style LMDB (folder with data.mdb): lossless WebP values under hex keys, in key order."""
    import lmdb

    rng = np.random.default_rng(seed)
    arrays = [pixels(rng, 20, 24) for _ in range(count)]
    env = lmdb.open(str(folder), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, arr in enumerate(arrays):
            txn.put(f"{i:040x}".encode(), encode(arr, "WEBP", lossless=True))
    env.close()
    return arrays


def make_hf(folder: Path, count: int = 6, splits: bool = True, seed: int = 4, column: str = "image"):
    """A saved Hugging Face dataset: an Image column and a ClassLabel 'label' column (a DatasetDict
    with train and test splits, or one Dataset). Returns {split: (images, labels)}."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image as HFImage

    rng = np.random.default_rng(seed)
    features = Features({column: HFImage(), "label": ClassLabel(names=["ant", "bee", "cow"])})
    out, parts = {}, {}
    for split in ("train", "test") if splits else ("train",):
        arrays = [pixels(rng, 8, 8) for _ in range(count)]
        labels = [int(v) for v in rng.integers(0, 3, count)]
        parts[split] = Dataset.from_dict({column: [Image.fromarray(a) for a in arrays], "label": labels}, features=features)
        out[split] = (arrays, labels)
    (DatasetDict(parts) if splits else parts["train"]).save_to_disk(str(folder))
    return out


def write_stylegan_zip(path: Path, arrays: list[np.ndarray], labels: Optional[list[int]]) -> list[str]:
    """A zip as stylegan2-ada's dataset_tool.py writes it: Pillow PNGs at compress_level 0 (with
    Pillow's row filters), names 00000/img00000000.png, stored entries, dataset.json with labels only."""
    names = [f"{i // 1000:05d}/img{i:08d}.png" for i in range(len(arrays))]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, arr in zip(names, arrays):
            z.writestr(name, encode(arr, "PNG", compress_level=0, optimize=False))
        meta = {"labels": [[n, l] for n, l in zip(names, labels)] if labels is not None else None}
        z.writestr("dataset.json", json.dumps(meta))
    return names
