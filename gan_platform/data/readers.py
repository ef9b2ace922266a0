"""Stored images by index: the one interface the streamed and the packed datasets read through.

A reader turns stored image i into uint8 (C, R, R) at the dataset's resolution and channels, or
None when it cannot be decoded (the caller applies `on_corrupt`). Three kinds exist: `FileReader`
(an image folder's files), `packed.archive.ZipReader` (the members of a zip) and
`packed.hf.HFReader` (the rows of a Hugging Face dataset). Readers are picked up by DataLoader
workers, so each one opens its own file handles in the process that reads (a handle inherited
through fork shares its file offset with the parent and would interleave reads).

`read_all` decodes a list of indices into one tensor with `workers` processes, in order: how an
in-memory packed set is loaded and how a streamed set reads its real statistics. torch is imported
there only, so that `gan-dataset` (which uses the readers of packed sets) starts without it.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Optional, Sequence

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    from torch import Tensor

from gan_platform.data.images import ON_CORRUPT, to_array
from gan_platform.data.packed.png import decode_plain
from gan_platform.errors import ConfigError, UserError

log = logging.getLogger(__name__)
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError)
READ_BATCH = 256  # images a DataLoader worker decodes per task when a whole set is read


def image_array(image: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """A decoded PIL image as uint8 (C, R, R): as stored when it already has that size and mode,
    else through the folders' conversion (`images.to_array`: short side to R, centre crop)."""
    if image.size == (resolution, resolution) and image.mode == ("L" if channels == 1 else "RGB"):
        arr = np.asarray(image, dtype=np.uint8)
        return arr[None] if channels == 1 else arr.transpose(2, 0, 1)
    return to_array(image, resolution, channels)


def decode_bytes(data: bytes, resolution: int, channels: int) -> Optional[np.ndarray]:
    """Encoded image bytes (PNG, JPEG, ...) as uint8 (C, R, R); None when they do not decode. A plain
    PNG (what gan-dataset writes, packed/png.py) skips Pillow when it is already the right form."""
    pixels = decode_plain(data)
    if pixels is not None:
        if pixels.shape[:2] == (resolution, resolution) and (pixels.ndim == 2) == (channels == 1):
            return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return to_array(Image.fromarray(pixels), resolution, channels)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image_array(image, resolution, channels)
    except UNREADABLE:
        return None


class ImageReader:
    """Stored image i as uint8 (C, R, R), or None when unreadable (see the module docstring)."""

    resolution: int
    channels: int

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, i: int) -> Optional[np.ndarray]:
        raise NotImplementedError

    def where(self, i: int) -> str:
        """How an error names stored image i (a path, a zip member, a row)."""
        raise NotImplementedError


class EncodedReader(ImageReader):
    """A reader of stored encoded images (a zip's members, a Hugging Face dataset's rows): `member(i)`
    gives image i's bytes (None when they cannot be had), decoded here as every such reader decodes."""

    def member(self, i: int) -> Optional[bytes]:
        raise NotImplementedError

    def read(self, i: int) -> Optional[np.ndarray]:
        data = self.member(i)
        return None if data is None else decode_bytes(data, self.resolution, self.channels)


class FileReader(ImageReader):
    """The files of an image folder, decoded as the in-memory folder decodes them (`images.to_array`)."""

    def __init__(self, files: Sequence[Path], resolution: int, channels: int):
        self.files, self.resolution, self.channels = list(files), int(resolution), int(channels)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> Optional[np.ndarray]:
        try:
            with Image.open(self.files[i]) as image:
                image.load()
                return to_array(image, self.resolution, self.channels)
        except UNREADABLE:
            return None

    def where(self, i: int) -> str:
        return f"image '{self.files[i]}'"


def check_reading(on_corrupt: str, workers: int) -> None:
    """The reading options every reader-backed dataset shares, each refused in one sentence."""
    if on_corrupt not in ON_CORRUPT:
        raise ConfigError(f"dataset.on_corrupt must be one of {', '.join(ON_CORRUPT)}, got '{on_corrupt}'.")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"dataset.workers must be a whole number of zero or more, got {workers!r}.")


class _Indexed:
    """index -> (index, image or None): a map-style dataset for reading a whole set with DataLoader workers."""

    def __init__(self, reader: ImageReader):
        self.reader = reader

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i: int) -> tuple[int, Optional[np.ndarray]]:
        return i, self.reader.read(i)


def _keep_batch(items: list) -> list:
    return items


def read_all(reader: ImageReader, indices: Sequence[int], on_corrupt: str = "skip", workers: int = 0,
             desc: str = "images") -> tuple["Tensor", list[int]]:
    """Stored images `indices` as one uint8 (N, C, R, R) tensor, in order, decoded by `workers`
    processes; returns it and the positions in `indices` that were kept (on_corrupt=skip drops
    unreadable images with one warning; error stops at the first, by name)."""
    import torch
    from tqdm.auto import tqdm

    shape = (reader.channels, reader.resolution, reader.resolution)
    out = torch.empty((len(indices), *shape), dtype=torch.uint8)
    filled = out.numpy()  # written through numpy: decoded arrays may be read-only views of the file's bytes
    loader = torch.utils.data.DataLoader(_Indexed(reader), batch_size=READ_BATCH, sampler=list(indices),
                                         num_workers=workers, collate_fn=_keep_batch,
                                         generator=torch.Generator().manual_seed(0))  # never draws from the global RNG
    kept, bad, pos = [], [], 0
    with tqdm(total=len(indices), desc=f"loading {desc}", disable=len(indices) < 2000, leave=False) as bar:
        for batch in loader:
            for i, array in batch:
                if array is None:
                    if on_corrupt == "error":
                        raise UserError(f"Cannot read {reader.where(i)}: remove or replace it, or set "
                                        "dataset.on_corrupt=skip to skip unreadable images.")
                    bad.append(i)
                else:
                    filled[len(kept)] = array
                    kept.append(pos)
                pos += 1
            bar.update(len(batch))
    if bad:
        log.warning("Skipped %d unreadable image(s) of %d in %s (first: %s).", len(bad), len(indices), desc,
                    reader.where(bad[0]))
    return (out[: len(kept)].clone() if bad else out), kept


__all__ = ["ImageReader", "EncodedReader", "FileReader", "decode_bytes", "image_array", "read_all", "check_reading"]
