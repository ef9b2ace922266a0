"""The zip of a packed dataset: stylegan2-ada's layout, read and checked before any training.

    DATASET.zip
      00000/img00000000.png     the images: members whose names end in an image suffix, in any
      00000/img00000001.png     folders; stored image i is the i-th name in sorted order (stylegan2-ada's)
      ...
      dataset.json              {"labels": [["00000/img00000000.png", 6], ...] or null,
                                 "class_names": ["airplane", ...]}          (class_names: optional)

Zips written by stylegan2-ada's, stylegan3's, EDM's and R3GAN's dataset tools read as they are
(their dataset.json has only "labels"), and the zips `gan-dataset` writes read in those tools, which
ignore "class_names". The class count is len(class_names) where given, else the largest label + 1
(stylegan2-ada's rule).

Refused in one sentence (`open_archive`), before any work: a missing or unreadable zip, one without
images, two members of one name, a dataset.json that is not JSON or labels images the zip does not
hold, images left without a label beside labelled ones, labels that are not whole numbers in
[0, classes).

`content_sha256` names the data: SHA-256 over every image's name and bytes in stored order, then
the labels and class names as JSON. Two zips with the same images, names and labels hash the same
whatever their zip metadata (dates, member order). gan-dataset prints it; a run's evaluation records
it (`dataset_sha256`) and keys its cache of real features by it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from gan_platform.data.images import IMAGE_SUFFIXES
from gan_platform.data.readers import EncodedReader
from gan_platform.errors import UserError

LABELS_FILE = "dataset.json"
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length (30 bytes)


@dataclass
class ArchiveIndex:
    """What a checked zip holds: image names in stored order, where each member's bytes lie, labels."""

    path: Path
    names: list[str]
    offsets: np.ndarray      # int64: each member's local header offset
    sizes: np.ndarray        # int64: compressed sizes
    crcs: np.ndarray         # uint32: CRC-32 of the uncompressed bytes
    stored: np.ndarray       # bool: ZIP_STORED (read directly) or compressed (read through zipfile)
    labels: Optional[list[int]]
    class_names: Optional[list[str]]

    @property
    def num_classes(self) -> Optional[int]:
        if self.labels is None:
            return None
        return len(self.class_names) if self.class_names else max(self.labels) + 1


def is_image_name(name: str) -> bool:
    """An image member: an image suffix, not a folder, not macOS's resource forks."""
    return (not name.endswith("/") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES
            and not name.startswith("__MACOSX/") and not os.path.basename(name).startswith("._"))


def _zip_members(path: Path) -> tuple[list[zipfile.ZipInfo], Optional[bytes]]:
    """(image members sorted by name, dataset.json's bytes or None), or one sentence."""
    if not path.is_file():
        raise UserError(f"The dataset zip '{path}' does not exist: make it with gan-dataset SOURCE {path} "
                        "--resolution N, or point dataset.path at an existing zip.")
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            meta = z.read(LABELS_FILE) if any(i.filename == LABELS_FILE for i in infos) else None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
        raise UserError(f"'{path}' is not a readable zip archive ({type(e).__name__}: {e}): make it again with "
                        "gan-dataset, or copy it again.") from e
    images = sorted((i for i in infos if is_image_name(i.filename)), key=lambda i: i.filename)
    if not images:
        raise UserError(f"The zip '{path}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}): make it with "
                        "gan-dataset from a folder or a dataset file.")
    twice = [a.filename for a, b in zip(images, images[1:]) if a.filename == b.filename]
    if twice:
        raise UserError(f"The zip '{path}' holds {len(twice)} name(s) twice (first: '{twice[0]}'): make it again "
                        "with gan-dataset, which refuses duplicate names.")
    return images, meta


def _whole_label(path: Path, name: str, value: Any, classes: Optional[int]) -> int:
    """A label as an int in [0, classes), or one sentence naming the image."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"dataset.json of '{path}' gives '{name}' the label {json.dumps(value)}: only whole-number "
                        "class labels are read; make the zip again with gan-dataset.")
    if value < 0 or (classes is not None and value >= classes):
        span = f"the {classes} classes 0..{classes - 1} of its class_names" if classes is not None else "0 or more"
        raise UserError(f"dataset.json of '{path}' gives '{name}' the label {value}, outside {span}: fix the label "
                        "or make the zip again with gan-dataset.")
    return value


def _read_labels(path: Path, meta: Optional[bytes], names: list[str]) -> tuple[Optional[list[int]], Optional[list[str]]]:
    """(labels in stored order or None, class names or None) from dataset.json's bytes."""
    if meta is None:
        return None, None
    try:
        doc = json.loads(meta)
        pairs, class_names = doc.get("labels"), doc.get("class_names")
    except (ValueError, AttributeError) as e:
        raise UserError(f"dataset.json in '{path}' is not a JSON object with \"labels\" ({e}): make the zip again "
                        "with gan-dataset.") from e
    if pairs is None:
        return None, None
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
        raise UserError(f"dataset.json in '{path}' must hold \"labels\": [[name, class], ...]: make the zip again "
                        "with gan-dataset.")
    if class_names is not None and (not isinstance(class_names, list) or not class_names):
        raise UserError(f"dataset.json in '{path}' has \"class_names\" that are not a list of names: remove the key "
                        "or make the zip again with gan-dataset.")
    classes = len(class_names) if class_names else None
    by_name: dict[str, int] = {}
    for name, value in pairs:
        if name in by_name:
            raise UserError(f"dataset.json of '{path}' labels '{name}' twice: keep one entry per image.")
        by_name[name] = _whole_label(path, name, value, classes)
    held = set(names)
    foreign = [n for n in by_name if n not in held]
    if foreign:
        raise UserError(f"dataset.json of '{path}' labels {len(foreign)} file(s) the zip does not hold (first: "
                        f"'{foreign[0]}'): make the zip again with gan-dataset.")
    missing = [n for n in names if n not in by_name]
    if missing:
        raise UserError(f"{len(missing)} image(s) of '{path}' have no label in its dataset.json (first: "
                        f"'{missing[0]}'): label every image, or set \"labels\": null for an unlabelled set.")
    return [by_name[n] for n in names], ([str(c) for c in class_names] if class_names else None)


def open_archive(path: str | Path) -> ArchiveIndex:
    """The checked index of the zip at `path` (see the module docstring for what is refused)."""
    path = Path(path).expanduser()
    images, meta = _zip_members(path)
    names = [i.filename for i in images]
    labels, class_names = _read_labels(path, meta, names)
    return ArchiveIndex(path, names, np.array([i.header_offset for i in images], dtype=np.int64),
                        np.array([i.compress_size for i in images], dtype=np.int64),
                        np.array([i.CRC for i in images], dtype=np.uint32),
                        np.array([i.compress_type == zipfile.ZIP_STORED for i in images], dtype=bool),
                        labels, class_names)


class ZipReader(EncodedReader):
    """The images of a checked zip by stored index. Stored members (what gan-dataset and stylegan2-ada
    write) are read with two `pread`s and their CRC checked; compressed ones through zipfile. Each
    process opens the file itself (see readers.py)."""

    def __init__(self, index: ArchiveIndex, resolution: int, channels: int):
        self.index, self.resolution, self.channels = index, int(resolution), int(channels)
        self._fd: Optional[int] = None
        self._zip: Optional[zipfile.ZipFile] = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.index.names)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fd": None, "_zip": None, "_pid": -1}

    def _own_handles(self) -> None:
        if self._pid != os.getpid():
            self._fd, self._zip, self._pid = os.open(self.index.path, os.O_RDONLY), None, os.getpid()

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():  # only the process that opened it closes it
            try:
                os.close(self._fd)
            except OSError:
                pass

    def member(self, i: int) -> Optional[bytes]:
        """Member i's uncompressed bytes, or None when they are damaged (a bad CRC, a cut-short file)."""
        self._own_handles()
        ix = self.index
        try:
            if not ix.stored[i]:
                if self._zip is None:
                    self._zip = zipfile.ZipFile(ix.path)
                return self._zip.read(ix.names[i])
            signature, name_len, extra_len = LOCAL_HEADER.unpack(os.pread(self._fd, LOCAL_HEADER.size, int(ix.offsets[i])))
            data = os.pread(self._fd, int(ix.sizes[i]), int(ix.offsets[i]) + LOCAL_HEADER.size + name_len + extra_len)
        except (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError):
            return None
        if signature != b"PK\x03\x04" or len(data) != ix.sizes[i] or zlib.crc32(data) != ix.crcs[i]:
            return None
        return data

    def where(self, i: int) -> str:
        return f"image '{self.index.names[i]}' of '{self.index.path}'"


def content_sha256(index: ArchiveIndex) -> str:
    """SHA-256 of the images' names and bytes in stored order, then the labels and class names
    (see the module docstring); a damaged member is one sentence."""
    reader, h = ZipReader(index, 1, 1), hashlib.sha256()
    for i, name in enumerate(index.names):
        data = reader.member(i)
        if data is None:
            raise UserError(f"The member '{name}' of '{index.path}' is damaged (its CRC or length is wrong): make "
                            "the zip again with gan-dataset, or copy it again.")
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    h.update(json.dumps({"labels": index.labels, "class_names": index.class_names}, sort_keys=True).encode())
    return h.hexdigest()
