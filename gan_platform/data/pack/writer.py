"""Writing a packed zip: atomically, the same bytes for the same input, and what it holds, summed up.

The zip is written to a hidden temporary file beside the destination (`.DEST.zip.XXXX.partial`) and
renamed over DEST.zip only once complete and flushed to disk: a run that fails or is stopped
(Ctrl-C, SIGTERM) removes its temporary file, a killed one (SIGKILL, power loss) leaves only that
file, never a half zip under the final name, and an existing DEST.zip (with --overwrite) stays
whole until the new one replaces it. Members are stored uncompressed (their PNGs carry their own
compression, stylegan2-ada's choice) with a fixed date, so packing the same input twice gives
byte-identical zips.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from gan_platform.data.packed.archive import LABELS_FILE, content_sha256, open_archive
from gan_platform.errors import UserError

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: no clock in the bytes


def check_destination(dest: Path, overwrite: bool) -> None:
    """Refuse, before any work, a destination that is not a .zip or that exists (without --overwrite)."""
    if dest.suffix.lower() != ".zip":
        raise UserError(f"The destination '{dest}' must end in .zip: gan-dataset writes one zip of PNGs.")
    if dest.is_dir():
        raise UserError(f"The destination '{dest}' is a folder: name a .zip file to write.")
    if dest.exists() and not overwrite:
        raise UserError(f"'{dest}' already exists: pass --overwrite to replace it (it stays whole until the new zip "
                        "is complete), or choose another name.")


@dataclass
class Summary:
    """What a packed zip holds, as gan-dataset prints it."""

    path: Path
    count: int
    resolution: int
    channels: int
    num_classes: Optional[int]
    class_names: Optional[list[str]]
    bytes: int
    sha256: str
    skipped: dict[str, int] = field(default_factory=dict)   # reason -> images left out
    first_skipped: dict[str, str] = field(default_factory=dict)
    made_rgb: int = 0                                        # grey images reconciled into a colour set

    def lines(self) -> list[str]:
        """The summary, a few lines for people."""
        colour = "grey" if self.channels == 1 else "RGB"
        if self.num_classes:
            names = ", ".join(self.class_names[:10]) + (", ..." if len(self.class_names) > 10 else "") if self.class_names else ""
            classes = f"{self.num_classes} classes" + (f" ({names})" if names else "")
        else:
            classes = "unlabelled"
        out = [f"{self.path}: {self.count} images, {classes}, {self.resolution} x {self.resolution} {colour}, "
               f"{self.bytes:,} bytes", f"content SHA-256: {self.sha256}"]
        for reason, n in self.skipped.items():
            out.append(f"skipped {n} {reason} (first: {self.first_skipped[reason]})")
        if self.made_rgb:
            out.append(f"{self.made_rgb} grey image(s) stored as RGB, like the rest of the set")
        return out


class ZipWriter:
    """Adds PNGs and their labels to a temporary zip; `finish` writes dataset.json and renames it."""

    def __init__(self, dest: Path):
        self.dest = dest
        self.names: dict[str, str] = {}   # stored name -> the source image it came from
        self.labels: list[list] = []
        self.tmp: Optional[Path] = None
        self.zip: Optional[zipfile.ZipFile] = None

    def __enter__(self) -> "ZipWriter":
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{self.dest.name}.", suffix=".partial", dir=self.dest.parent)
        os.close(fd)
        self.tmp = Path(name)
        self.zip = zipfile.ZipFile(self.tmp, "w", zipfile.ZIP_STORED)
        return self

    def _write(self, name: str, data: bytes) -> None:
        info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
        info.external_attr = 0o644 << 16
        self.zip.writestr(info, data)

    def add(self, name: str, data: bytes, label: Optional[int], origin: str) -> None:
        """One image; a second image of the same stored name is refused, naming both."""
        if name in self.names:
            raise UserError(f"{self.names[name]} and {origin} would both be stored as '{name}': rename one of them "
                            "(names are kept, with the suffix .png).")
        self.names[name] = origin
        self._write(name, data)
        if label is not None:
            self.labels.append([name, int(label)])

    def finish(self, class_names: Optional[list[str]]) -> None:
        """dataset.json, then close, flush and rename the temporary zip to the destination."""
        labelled = bool(self.labels) and len(self.labels) == len(self.names)
        meta = {"labels": self.labels if labelled else None, **({"class_names": class_names} if labelled and class_names else {})}
        self._write(LABELS_FILE, json.dumps(meta).encode())
        self.zip.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.dest)
        self.tmp = None
        dir_fd = os.open(self.dest.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def __exit__(self, *exc: object) -> None:
        if self.tmp is not None:  # not finished: failed or stopped
            if self.zip is not None:
                self.zip.close()
            self.tmp.unlink(missing_ok=True)


def summarise(dest: Path, resolution: int, channels: int, skipped: dict[str, int], first_skipped: dict[str, str],
              made_rgb: int) -> Summary:
    """The written zip read back as a user's run will read it: count, classes, bytes, content hash."""
    index = open_archive(dest)
    return Summary(dest, len(index.names), resolution, channels, index.num_classes, index.class_names,
                   dest.stat().st_size, content_sha256(index), dict(skipped), dict(first_skipped), made_rgb)
