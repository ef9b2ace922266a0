"""A folder of image files as a dataset, labelled by class subfolders or unlabelled.

    root/cat/001.png, root/cat/002.jpg, root/dog/001.png, ...   one subfolder per class: labelled,
                                                                 classes in sorted folder-name order
    root/001.png, root/002.jpg, ...                              images directly in root: unlabelled

Each image is converted to `channels` (1 = grey, 3 = RGB), its short side resized to `resolution`
and centre-cropped to a square (`images.load_images`). Unreadable files are skipped and counted
(``on_corrupt: skip``) or stop the run with one sentence (``on_corrupt: error``). Hidden folders
and subfolders without images are ignored; files in class subfolders are read one level deep.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import torch

from gan_platform.data.base import TensorDataset
from gan_platform.data.images import IMAGE_SUFFIXES, check_folder, list_images, load_images
from gan_platform.errors import ConfigError, UserError

log = logging.getLogger(__name__)


def class_folders(root: Path) -> dict[str, list[Path]]:
    """{class name: its image files} for every non-hidden subfolder of `root` that holds images."""
    classes: dict[str, list[Path]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = list_images(sub)
        if files:
            classes[sub.name] = files
        else:
            log.warning("Ignoring subfolder '%s': it holds no images (%s).", sub, ", ".join(sorted(IMAGE_SUFFIXES)))
    return classes


def _streamed(files: list[Path], classes: Optional[dict[str, list[Path]]], resolution: int, channels: int,
              on_corrupt: str, workers: int, mirror: bool) -> TensorDataset:
    """The folder's files read batch by batch (streaming.py), labelled by class when `classes` is given."""
    from gan_platform.data.readers import FileReader, check_reading
    from gan_platform.data.streaming import StreamingImages

    check_reading(on_corrupt, workers)
    names = list(classes) if classes else None
    labels = torch.tensor([i for i, n in enumerate(names) for _ in classes[n]], dtype=torch.int64) if names else None
    return StreamingImages("image_folder", FileReader(files, resolution, channels), labels, len(names) if names else None,
                           names, on_corrupt, workers, mirror)


def image_folder(root: Optional[str] = None, resolution: int = 32, channels: int = 3,
                 on_corrupt: str = "skip", stream: Any = "auto", stream_above_mb: float = 2048.0,
                 workers: int = 4, mirror: bool = False) -> TensorDataset:
    """The images under `root` as uint8 (N, channels, resolution, resolution), with class labels
    when `root` holds one subfolder per class. Held in memory, or streamed from disk by `workers`
    DataLoader workers (streaming.py) when `stream` is true, or `auto` and the decoded set would
    take more than `stream_above_mb` megabytes. `mirror` doubles the set with x-flips (base.py)."""
    if not root:
        raise ConfigError("dataset.root is not set: add dataset.root=PATH, a folder of images or of one subfolder per class.")
    path = check_folder(root, "dataset.root")
    classes = class_folders(path)
    loose = list_images(path)
    if classes and loose:
        raise UserError(f"The folder '{path}' holds both images and class subfolders: move the {len(loose)} loose "
                        "image(s) into a class subfolder, or point dataset.root at a folder of one kind.")
    if not classes and not loose:
        raise UserError(f"The folder '{path}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}): put the images "
                        "in it, or one subfolder of images per class.")
    if stream not in ("auto", True, False):
        raise ConfigError(f"dataset.stream must be auto, true or false, got '{stream}'.")
    if workers < 0:
        raise ConfigError(f"dataset.workers must be zero or more, got {workers}.")
    files = loose or [f for name in classes for f in classes[name]]
    if stream is True or (stream == "auto" and len(files) * channels * resolution ** 2 > stream_above_mb * 2**20):
        log.info("Streaming %d images of '%s' from disk with %d workers.", len(files), path, workers)
        return _streamed(files, None if loose else classes, resolution, channels, on_corrupt, workers, mirror)
    if loose:
        x, kept = load_images(loose, resolution, channels, on_corrupt, desc=path.name)
        labels, names = None, None
        total = len(loose)
    else:
        names = list(classes)
        files = [f for name in names for f in classes[name]]
        owner = torch.tensor([i for i, name in enumerate(names) for _ in classes[name]], dtype=torch.int64)
        x, kept = load_images(files, resolution, channels, on_corrupt, desc=path.name)
        labels = owner[torch.tensor(kept, dtype=torch.int64)]
        total = len(files)
    if len(x) == 0:
        raise UserError(f"None of the {total} image(s) under '{path}' could be read: check the files, "
                        "or set dataset.on_corrupt=error to see the first unreadable one.")
    if names is not None:
        present = set(labels.tolist())
        empty = [n for i, n in enumerate(names) if i not in present]
        if empty:
            log.warning("Class(es) %s of '%s' have no readable images left.", ", ".join(empty), path)
    return TensorDataset("image_folder", x, labels, num_classes=len(names) if names else None, kind="images",
                         class_names=names, mirror=mirror)
