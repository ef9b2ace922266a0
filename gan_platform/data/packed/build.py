"""`dataset=zip`: a packed zip (archive.py) as a dataset, and the builder it shares with `dataset=hf`.

    python -m gan_platform dataset=zip dataset.path=cifar10-32.zip               # labels from dataset.json
    python -m gan_platform dataset=zip dataset.path=ffhq-256.zip dataset.mirror=true

`packed_dataset` holds a set in memory as uint8 when its decoded pixels take at most
`stream_above_mb` megabytes (decoded once, by `workers` processes), and streams it from the file
otherwise (streaming.py: `workers` DataLoader processes read ahead, each process of a run its own
shard, a resumed run the same batches). `resolution` and `channels` default to the stored images'
(null); other values resize (short side, centre crop) and convert as an image folder does.
`mirror` doubles the set with x-flips (base.py). The set's `source` gives the evaluation its file
name and content SHA-256 (`dataset_file`, `dataset_sha256`).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from PIL import Image

from gan_platform.data.base import TensorDataset, check_mirror
from gan_platform.data.packed.archive import ZipReader, content_sha256, open_archive
from gan_platform.data.readers import ImageReader, check_reading, read_all
from gan_platform.errors import ConfigError, UserError

log = logging.getLogger(__name__)
STREAM = ("auto", True, False)
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # Pillow modes read as one channel


@dataclass
class PackedSource:
    """The file a packed set came from, and its content hash, computed when first asked."""

    fields: dict[str, Any]
    sha256: Callable[[], str]
    _protocol: Optional[dict[str, Any]] = field(default=None, repr=False)

    def protocol(self) -> dict[str, Any]:
        if self._protocol is None:
            self._protocol = {**self.fields, "dataset_sha256": self.sha256()}
        return self._protocol


def check_options(resolution: Any, channels: Any, stream: Any, stream_above_mb: Any) -> None:
    """The options both packed datasets take, each refused in one sentence."""
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 4):
        raise ConfigError(f"dataset.resolution must be a whole number of at least 4, or null for the stored size; got {resolution!r}.")
    if channels not in (None, 1, 3):
        raise ConfigError(f"dataset.channels must be 1, 3 or null (as stored), got {channels!r}.")
    if stream not in STREAM:
        raise ConfigError(f"dataset.stream must be auto, true or false, got '{stream}'.")
    if not isinstance(stream_above_mb, (int, float)) or stream_above_mb < 0:
        raise ConfigError(f"dataset.stream_above_mb must be a number of megabytes, got {stream_above_mb!r}.")


def stored_form(first: tuple[int, int, int], resolution: Optional[int], channels: Optional[int], where: str) -> tuple[int, int]:
    """(resolution, channels) to read at: the options, or the stored (width, height, channels) of
    the first image; stored images that are not square need a resolution."""
    width, height, stored_channels = first
    if resolution is None and width != height:
        raise ConfigError(f"The images of {where} are {width} x {height}, not square: set dataset.resolution=N to "
                          "resize and centre-crop them to N x N.")
    return int(resolution or width), int(channels or stored_channels)


def packed_dataset(name: str, reader: ImageReader, labels: Optional[list[int]], num_classes: Optional[int],
                   class_names: Optional[list[str]], source: PackedSource, *, mirror: bool, on_corrupt: str,
                   stream: Any, stream_above_mb: float, workers: int) -> TensorDataset:
    """The set behind `reader`, in memory or streamed (see the module docstring)."""
    from gan_platform.data.streaming import StreamingImages

    check_reading(on_corrupt, workers)
    check_mirror(name, "images", mirror)
    y = torch.tensor(labels, dtype=torch.int64) if labels is not None else None
    megabytes = len(reader) * reader.channels * reader.resolution ** 2 / 2**20
    if stream is True or (stream == "auto" and megabytes > stream_above_mb):
        log.info("Streaming the %d images of %s (%.0f MB decoded) with %d workers.", len(reader), name, megabytes, workers)
        ds: TensorDataset = StreamingImages(name, reader, y, num_classes, class_names, on_corrupt, workers, mirror)
    else:
        x, kept = read_all(reader, range(len(reader)), on_corrupt, workers, desc=name)
        if len(x) == 0:
            raise UserError(f"None of the {len(reader)} images of {name} could be read: check the file, or set "
                            "dataset.on_corrupt=error to see the first unreadable one.")
        if y is not None and len(kept) < len(y):
            y = y[torch.tensor(kept, dtype=torch.int64)]
        ds = TensorDataset(name, x, y, num_classes, "images", class_names, mirror)
    ds.source = source
    return ds


def first_readable(reader_at: Callable[[int, int], ImageReader], count: int, where: str) -> tuple[int, int, int]:
    """(width, height, channels) of the first readable stored image (readers of packed sets give
    their encoded bytes by `member(i)`), or one sentence."""
    probe = reader_at(1, 1)
    for i in range(min(count, 64)):
        data = probe.member(i)
        if data is None:
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.size[0], image.size[1], 1 if image.mode in GREY_MODES else 3
        except (OSError, ValueError, SyntaxError):
            continue
    raise UserError(f"None of the first {min(count, 64)} images of {where} can be read: check the file.")


def zip_dataset(path: Optional[str] = None, resolution: Optional[int] = None, channels: Optional[int] = None,
                mirror: bool = False, on_corrupt: str = "skip", stream: Any = "auto", stream_above_mb: float = 2048.0,
                workers: int = 4) -> TensorDataset:
    """The zip at `path` (stylegan2-ada's layout, archive.py), labelled where its dataset.json says so."""
    if not path:
        raise ConfigError("dataset.path is not set: add dataset.path=FILE.zip, a zip made by gan-dataset "
                          "(or by stylegan2-ada's dataset_tool.py).")
    check_options(resolution, channels, stream, stream_above_mb)
    index = open_archive(path)
    where = f"'{index.path}'"
    first = first_readable(lambda r, c: ZipReader(index, r, c), len(index.names), where)
    res, ch = stored_form(first, resolution, channels, where)
    source = PackedSource({"dataset_file": Path(index.path).name}, lambda: content_sha256(index))
    return packed_dataset(Path(index.path).name, ZipReader(index, res, ch), index.labels, index.num_classes,
                          index.class_names, source, mirror=bool(mirror), on_corrupt=on_corrupt, stream=stream,
                          stream_above_mb=float(stream_above_mb), workers=workers)
