"""Packing: a source (sources.py, databases.py) through the transform (transform.py) into a zip (writer.py).

Order of work, so that a mistake costs nothing: the options and the destination are checked, the
source is opened (its format and labels), the first readable image fixes what the options leave
open (channels, or the size without --resolution), then `workers` processes decode, transform and
encode the images in order while this process writes them. Refusals (an alpha channel without
--channels, a colour image in a grey set, a size that differs without --resolution, a duplicate
name, an unreadable image with --on-corrupt error) stop the run with one sentence and remove the
temporary file.
"""

from __future__ import annotations

import io
import itertools
import multiprocessing
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from gan_platform.data.pack.sources import Item, Source, open_cifar, open_folder, open_idx, open_zip
from gan_platform.data.pack.transform import Refused, Shape, convert, fit, native_channels
from gan_platform.data.pack.writer import Summary, ZipWriter, check_destination, summarise
from gan_platform.data.packed.png import decode_plain, encode_plain
from gan_platform.errors import UserError

FORMATS = ("auto", "folder", "zip", "cifar", "idx", "lmdb", "hf")
AUTO_WORKERS_FROM = 1000  # below this many images, starting worker processes costs more than it saves
UNREADABLE = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError)


@dataclass(frozen=True)
class Options:
    """gan-dataset's options (see __main__.py for each one's meaning)."""

    source: Path
    dest: Path
    shape: Shape
    source_format: str = "auto"
    labelled: bool = True
    split: str = "train"
    image_column: str = "image"
    label_column: Optional[str] = "auto"
    class_names: Optional[list[str]] = None
    max_images: Optional[int] = None
    on_corrupt: str = "skip"
    workers: Optional[int] = None      # None: up to 8 processes, none for a source of fewer than AUTO_WORKERS_FROM images
    overwrite: bool = False
    png_compression: int = 0
    progress: bool = True


def detect_format(path: Path) -> str:
    """What `path` holds, from its name and contents (--source-format overrides)."""
    if path.is_file():
        name = path.name.lower()
        if name.endswith(".zip"):
            return "zip"
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            return "cifar"
        if "-idx3-ubyte" in name:
            return "idx"
        return "lmdb" if name.endswith(".mdb") else "unknown"
    if (path / "data.mdb").is_file() or path.name.endswith("_lmdb"):
        return "lmdb"
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return "hf"
    if any((p / m).is_file() for p in (path, path / "cifar-10-batches-py", path / "cifar-100-python") for m in ("batches.meta", "meta")):
        return "cifar"
    if any(path.glob("*-idx3-ubyte*")) or any(path.glob("raw/*-idx3-ubyte*")):
        return "idx"
    return "folder"


def open_source(opts: Options) -> Source:
    """The source the options name, opened (format detected unless given)."""
    from gan_platform.data.pack.databases import open_hf, open_lmdb

    path = opts.source.expanduser()
    if not path.exists():
        raise UserError(f"The source '{path}' does not exist: point SOURCE at a folder of images or a dataset file.")
    kind = detect_format(path) if opts.source_format == "auto" else opts.source_format
    if kind == "unknown":
        raise UserError(f"Cannot tell what '{path}' holds: pass --source-format ({', '.join(FORMATS[1:])}).")
    if kind == "folder":
        return open_folder(path, opts.labelled)
    if kind == "zip":
        return open_zip(path, opts.labelled)
    if kind == "cifar":
        return open_cifar(path, opts.split, opts.label_column, opts.labelled)
    if kind == "idx":
        return open_idx(path, opts.split, opts.labelled)
    if kind == "lmdb":
        return open_lmdb(path)
    return open_hf(path, opts.split, opts.image_column, opts.label_column, opts.labelled)


def open_image(payload: Any) -> Image.Image:
    """An item's image, decoded (pixels, encoded bytes or a file)."""
    if payload is None:
        raise OSError("the source could not give its bytes")
    if isinstance(payload, np.ndarray):
        return Image.fromarray(payload)
    if isinstance(payload, (bytes, bytearray)):
        pixels = decode_plain(payload)
        if pixels is not None:
            return Image.fromarray(pixels)
        payload = io.BytesIO(payload)
    image = Image.open(payload)
    image.load()
    return image


def prepare(item: Item, shape: Shape, explicit: bool, level: int) -> tuple[str, Item, Any, bool]:
    """What a worker does with one item: (status, the item without its payload, PNG bytes or a
    sentence, whether a grey image was made RGB); status is ok, unreadable, small (too small for
    center-crop-wide) or refused."""
    done = replace(item, payload=None)
    try:
        image = open_image(item.payload)
    except UNREADABLE as e:
        return "unreadable", done, type(e).__name__, False
    made_rgb = not explicit and shape.channels == 3 and native_channels(image) == 1
    try:
        image = fit(convert(image, shape.channels, explicit, item.origin), shape)
    except Refused as e:
        return "refused", done, str(e), False
    if image is None:
        return "small", done, None, False
    if image.size != (shape.side, shape.side):
        return "refused", done, (f"{item.origin} is {image.size[0]} x {image.size[1]} while the images before it are "
                                 f"{shape.side} x {shape.side}: pass --resolution N to bring every image to N x N."), False
    return "ok", done, encode_plain(np.asarray(image), level), made_rgb


def _prepare_star(args: tuple) -> tuple[str, Item, Any, bool]:
    return prepare(*args)


def is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def probe(items: Iterator[Item], opts: Options, any_resolution: bool) -> tuple[list[Item], Shape]:
    """(the items read, the shape with its open choices fixed by the first readable image)."""
    seen = []
    for item in items:
        seen.append(item)
        try:
            image = open_image(item.payload)
        except UNREADABLE:
            continue
        shape = opts.shape
        if shape.channels is None:
            native = native_channels(image)
            if native is None:
                raise UserError(f"{item.origin} has an alpha channel ({image.mode}): pass --channels 3 (or 1) to drop it.")
            shape = replace(shape, channels=native)
        if shape.resolution is None:
            w, h = image.size
            if w != h:
                raise UserError(f"{item.origin} is {w} x {h}, not square: pass --resolution N (with --transform "
                                "center-crop or pad) to make every image N x N.")
            if not any_resolution and not is_power_of_two(w):
                raise UserError(f"The images are {w} x {w}, and the networks need a power of two (8, 16, 32, ...): pass "
                                "--resolution N to resize them (--transform pad keeps them whole), or --any-resolution.")
            shape = replace(shape, stored=w)
        return seen, shape
    raise UserError(f"None of the {len(seen)} images of the source could be read: check the files.")


def prepared(items: Iterator[Item], shape: Shape, opts: Options, count: int) -> Iterator[tuple[str, Item, Any, bool]]:
    """Every item prepared, in order: here (workers 0) or by worker processes."""
    explicit = opts.shape.channels is not None
    jobs = ((item, shape, explicit, opts.png_compression) for item in items)
    workers = opts.workers if opts.workers is not None else (0 if count < AUTO_WORKERS_FROM else min(8, os.cpu_count() or 1))
    if workers <= 0:
        yield from map(_prepare_star, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_prepare_star, jobs, chunksize=32)


def pack(opts: Options, any_resolution: bool = False) -> Summary:
    """Pack `opts.source` into `opts.dest` (see the module docstring); returns what the zip holds."""
    from tqdm.auto import tqdm

    check_destination(opts.dest, opts.overwrite)
    source = open_source(opts)
    class_names = opts.class_names or source.class_names
    if opts.class_names and not source.labelled:
        raise UserError(f"--class-names names the classes of labels, and '{opts.source}' is packed unlabelled: drop "
                        "--class-names, or --no-labels if you meant the labels.")
    if opts.class_names and len(opts.class_names) < 2:
        raise UserError("--class-names needs the names of at least two classes, comma-separated.")
    items = source.items()
    seen, shape = probe(items, opts, any_resolution)
    total = min(source.count, opts.max_images or source.count)
    skipped: dict[str, int] = {}
    first_skipped: dict[str, str] = {}
    made_rgb = written = 0
    with ZipWriter(opts.dest) as writer, tqdm(total=total, desc=f"packing {opts.dest.name}", unit="img",
                                              disable=not opts.progress) as bar:
        for status, item, out, rgb in prepared(itertools.chain(seen, items), shape, opts, source.count):
            if status == "refused":
                raise UserError(out)
            if status == "unreadable" and opts.on_corrupt == "error":
                raise UserError(f"Cannot read {item.origin} ({out}): remove or replace it, or pass --on-corrupt skip "
                                "to leave unreadable images out.")
            if status != "ok":
                reason = "unreadable image(s)" if status == "unreadable" else "image(s) too small for center-crop-wide"
                skipped[reason] = skipped.get(reason, 0) + 1
                first_skipped.setdefault(reason, item.origin)
                continue
            writer.add(item.name, out, item.label if source.labelled else None, item.origin)
            made_rgb, written = made_rgb + rgb, written + 1
            bar.update(1)
            if written == opts.max_images:
                break
        if written == 0:
            raise UserError(f"No image of '{opts.source}' could be packed ({', '.join(f'{n} {r}' for r, n in skipped.items())}): "
                            "check the files and the transform.")
        check_class_names(class_names, writer.labels)
        writer.finish(class_names if source.labelled else None)
    return summarise(opts.dest, shape.side, shape.channels, skipped, first_skipped, made_rgb)


def check_class_names(names: Optional[list[str]], labels: list[list]) -> None:
    """Every label must name a class when the class names are known."""
    if names and labels:
        top = max(label for _, label in labels)
        if top >= len(names):
            raise UserError(f"The labels run to {top}, beyond the {len(names)} class names: give --class-names one name "
                            "per class, in label order.")
