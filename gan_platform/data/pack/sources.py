"""What `gan-dataset` reads: each source format as a stream of items (databases.py: LMDB and HF).

    a folder of images     class subfolders become labels (sorted names; images read recursively inside
                           each), or every image under it unlabelled (--no-labels, or no subfolders);
                           names are kept, as .png (so cat/001.jpg and cat/001.png collide, refused)
    a zip                  another packed zip (stylegan2-ada's layout): names, labels and class names kept
    CIFAR-10 / CIFAR-100   the python tarball (cifar-10-python.tar.gz, cifar-100-python.tar.gz) or its folder;
                           --split train|test; CIFAR-100 --label-column fine_labels|coarse_labels
    MNIST / Fashion-MNIST  the idx files ({train,t10k}-images-idx3-ubyte[.gz] and -labels-idx1-ubyte[.gz]),
                           the folder that holds them (or its raw/), or the images file; --split train|test

Images from arrays (CIFAR, idx, LMDB, HF) are named as stylegan2-ada names them,
`00000/img00000000.png` (the source index, five digits of folder), so a skipped image leaves a gap.
The CIFAR pickles are read by an unpickler that accepts only numpy arrays and plain values.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from gan_platform.data.images import IMAGE_SUFFIXES
from gan_platform.errors import UserError


@dataclass
class Item:
    """One source image: how messages name it, what holds it (a file Path, encoded bytes, uint8
    (H, W[, 3]) pixels, or None when the source could not give it), its label, its name in the zip."""

    origin: str
    payload: Any
    label: Optional[int]
    name: str


@dataclass
class Source:
    """An opened source: how many items, the items (read lazily), and its class names if labelled."""

    kind: str
    count: int
    items: Callable[[], Iterator[Item]]
    labelled: bool
    class_names: Optional[list[str]] = None


def index_name(i: int) -> str:
    """stylegan2-ada's member name for source image i."""
    return f"{i // 1000:05d}/img{i:08d}.png"


def png_name(relative: str) -> str:
    """A kept name with its suffix made .png (what the zip stores)."""
    return str(Path(relative).with_suffix(".png").as_posix())


# -- a folder of images ------------------------------------------------------------------------
def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def _images_under(folder: Path, root: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and _visible(p, root))


def open_folder(root: Path, labelled: bool) -> Source:
    """A folder of images (see the module docstring)."""
    loose = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    classes = {}
    if labelled:
        for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = _images_under(sub, root)
            if files:
                classes[sub.name] = files
    if classes and loose:
        raise UserError(f"The folder '{root}' holds both images and class subfolders: move the {len(loose)} loose "
                        "image(s) into a class subfolder, or pass --no-labels to pack every image unlabelled.")
    files = [(f, c) for c, name in enumerate(classes) for f in classes[name]] if classes else \
        [(f, None) for f in _images_under(root, root)]
    if not files:
        raise UserError(f"The folder '{root}' holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}): point SOURCE at "
                        "a folder of images, or of one subfolder of images per class.")

    def items() -> Iterator[Item]:
        for path, label in files:
            yield Item(f"'{path}'", path, label, png_name(path.relative_to(root).as_posix()))

    return Source("folder", len(files), items, bool(classes), list(classes) or None)


# -- another packed zip ------------------------------------------------------------------------
def open_zip(path: Path, labelled: bool) -> Source:
    from gan_platform.data.packed.archive import ZipReader, open_archive

    index = open_archive(path)
    reader = ZipReader(index, 1, 1)
    labels = index.labels if labelled else None

    def items() -> Iterator[Item]:
        for i, name in enumerate(index.names):
            yield Item(f"'{name}' of '{path}'", reader.member(i), labels[i] if labels is not None else None, png_name(name))

    return Source("zip", len(index.names), items, labels is not None, index.class_names if labels is not None else None)


# -- CIFAR-10 / CIFAR-100 ----------------------------------------------------------------------
CIFAR = {  # kind -> (folder in the tarball, files per split, meta file)
    "cifar10": ("cifar-10-batches-py", {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}, "batches.meta"),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}, "meta"),
}


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and plain values, nothing else (a CIFAR batch holds no more)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _cifar_reader(path: Path) -> tuple[str, Callable[[str], bytes]]:
    """(kind, read(file name) -> bytes) for a CIFAR tarball or folder."""
    if path.is_file():
        try:
            tar = tarfile.open(path, "r:*")
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UserError(f"'{path}' is not a readable tarball ({e}): download cifar-10-python.tar.gz or "
                            "cifar-100-python.tar.gz again.") from e
        kind = "cifar10" if "batches.meta" in members else "cifar100" if "meta" in members else None
        read = lambda name: tar.extractfile(members[name]).read()  # noqa: E731
        names = set(members)
    else:
        folder = next((p for p in (path, path / "cifar-10-batches-py", path / "cifar-100-python")
                       if (p / "batches.meta").is_file() or (p / "meta").is_file()), path)
        kind = "cifar10" if (folder / "batches.meta").is_file() else "cifar100" if (folder / "meta").is_file() else None
        read = lambda name: (folder / name).read_bytes()  # noqa: E731
        names = {p.name for p in folder.iterdir()}
    if kind is None:
        raise UserError(f"'{path}' holds neither CIFAR-10's batches.meta nor CIFAR-100's meta: point SOURCE at the "
                        "python version of CIFAR (cifar-10-python.tar.gz or its cifar-10-batches-py folder).")
    wanted = [*CIFAR[kind][1]["train"], *CIFAR[kind][1]["test"]]
    missing = [n for n in wanted if n not in names]
    if missing:
        raise UserError(f"'{path}' lacks the {kind} file(s) {', '.join(missing)}: download the full tarball again.")
    return kind, read


def _unpickle(data: bytes, what: str) -> dict:
    try:
        return _ArraysOnly(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise UserError(f"{what} is not a CIFAR python batch ({e}): download the tarball again.") from e


def open_cifar(path: Path, split: str, label_column: Optional[str], labelled: bool) -> Source:
    """CIFAR-10 or CIFAR-100, python version (see the module docstring)."""
    kind, read = _cifar_reader(path)
    if split not in ("train", "test"):
        raise UserError(f"CIFAR has the splits train and test, not '{split}': pass --split train or --split test.")
    column = label_column if label_column not in (None, "auto") else ("labels" if kind == "cifar10" else "fine_labels")
    meta = _unpickle(read(CIFAR[kind][2]), f"{kind}'s {CIFAR[kind][2]}")
    names_key = "label_names" if kind == "cifar10" else column.replace("labels", "label_names")
    images, labels = [], []
    for name in CIFAR[kind][1][split]:
        batch = _unpickle(read(name), f"{kind}'s {name}")
        if column not in batch:
            raise UserError(f"{kind}'s {name} has no '{column}' labels (it has {', '.join(k for k in batch if 'label' in k)}): "
                            "pass one of those as --label-column.")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.extend(int(v) for v in batch[column])
    pixels = np.concatenate(images)

    def items() -> Iterator[Item]:
        for i in range(len(pixels)):
            yield Item(f"{kind} {split} image {i}", pixels[i], labels[i] if labelled else None, index_name(i))

    return Source(kind, len(pixels), items, labelled, [str(n) for n in meta[names_key]] if labelled else None)


# -- MNIST / Fashion-MNIST idx files -------------------------------------------------------------
def _idx_files(path: Path, split: str) -> tuple[Path, Path]:
    """(the images file, where its labels file belongs) for `split` under `path`, or `path` itself."""
    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}.get(split)
    if prefix is None:
        raise UserError(f"The idx files have the splits train and test, not '{split}': pass --split train or test.")
    if path.is_file():
        images = path
    else:
        found = [p for folder in (path, path / "raw") for suffix in ("", ".gz")
                 for p in [folder / f"{prefix}-images-idx3-ubyte{suffix}"] if p.is_file()]
        if not found:
            raise UserError(f"'{path}' holds no {prefix}-images-idx3-ubyte[.gz]: point SOURCE at MNIST's or "
                            "Fashion-MNIST's idx files.")
        images = found[0]
    return images, images.with_name(images.name.replace("images-idx3", "labels-idx1"))


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """An idx file's array (N, ...) after checking its magic number and length."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise UserError(f"'{path}' cannot be read ({e}): download it again.") from e
    head = 4 + 4 * dims
    if len(data) < head or struct.unpack(">I", data[:4])[0] != magic:
        raise UserError(f"'{path}' is not an idx file of {dims} dimension(s): point SOURCE at MNIST's idx files.")
    shape = struct.unpack(f">{dims}I", data[4:head])
    if len(data) - head != int(np.prod(shape)):
        raise UserError(f"'{path}' is cut short or too long for its {' x '.join(map(str, shape))} values: download it again.")
    return np.frombuffer(data, dtype=np.uint8, offset=head).reshape(shape)


def open_idx(path: Path, split: str, labelled: bool) -> Source:
    """MNIST / Fashion-MNIST idx files (see the module docstring)."""
    images_path, labels_path = _idx_files(path, split)
    if labelled and not labels_path.is_file():
        raise UserError(f"The labels file '{labels_path}' beside '{images_path}' is missing: put it there, or pass "
                        "--no-labels.")
    pixels = _read_idx(images_path, 0x803, 3)
    labels = _read_idx(labels_path, 0x801, 1) if labelled else None
    if labels is not None and len(labels) != len(pixels):
        raise UserError(f"'{images_path}' holds {len(pixels)} images and '{labels_path}' {len(labels)} labels: "
                        "use the two files of one split.")

    def items() -> Iterator[Item]:
        for i in range(len(pixels)):
            yield Item(f"'{images_path}' image {i}", pixels[i], int(labels[i]) if labels is not None else None, index_name(i))

    return Source("idx", len(pixels), items, labelled)
