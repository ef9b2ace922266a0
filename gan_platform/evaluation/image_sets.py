"""Sets of images on disk, both ways: samples exported for outside tools, and any model's images read in.

Three forms, each holding uint8 images (what every FID tool reads) and, beside them, the protocol
that made them (`protocol.json`) and class labels where there are any:

    DIR/        000000.png, 000001.png, ... (grey: mode L; RGB), dataset.json, protocol.json
    FILE.zip    the same files inside one zip (stylegan2-ada's dataset layout: dataset.json holds
                {"labels": [["000000.png", 3], ...]} or null)
    FILE.npz    arr_0: uint8 (N, H, W, C), the array guided-diffusion's evaluator and clean-fid read;
                labels: (N,) int64 where known; protocol: its JSON text

Generator samples in [-1, 1] become uint8 as every FID path here quantises them:
round((x + 1) * 127.5), clamped to [0, 255] (`to_uint8`). Reading takes a folder of image files
(any names, no subfolders), a zip of them (any depth), or an npz with `arr_0` (or `images`) as
(N, H, W, C) or (N, C, H, W) uint8. Every problem a user can cause (a target that exists, a folder
that cannot be read, images of several sizes or channel counts in one set, a file that is no image)
is one sentence.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor

from gan_platform.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
FORMATS = "a folder, a .zip or an .npz"


@dataclass
class ImageSet:
    """uint8 images (N, C, H, W), their labels (N,) or None, and the protocol stored with them."""

    images: Tensor
    labels: Optional[Tensor] = None
    protocol: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def decoded(self) -> Tensor:
        """The images in generator form: float32 in [-1, 1]."""
        return self.images.float().mul_(1.0 / 127.5).sub_(1.0)


def to_uint8(x: Tensor) -> Tensor:
    """Generator-form images in [-1, 1] -> uint8: round((x + 1) * 127.5), clamped."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def image_names(n: int) -> list[str]:
    return [f"{i:06d}.png" for i in range(n)]


# -- writing ------------------------------------------------------------------------------------
def check_target(target: str | Path) -> Path:
    """`target` as a Path that does not exist yet and has a known form; else one sentence."""
    path = Path(target).expanduser()
    if path.exists():
        raise UserError(f"'{path}' already exists, and an export never overwrites: pass a new --out or remove it.")
    if path.suffix.lower() not in ("", ".zip", ".npz"):
        raise UserError(f"--out '{path}' ends in '{path.suffix}': export to {FORMATS} (DIR, FILE.zip or FILE.npz).")
    return path


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def _files(images: Tensor, labels: Optional[Tensor], protocol: dict[str, Any]) -> dict[str, bytes]:
    """Every file of a folder or zip export, by name."""
    names = image_names(len(images))
    hwc = images.permute(0, 2, 3, 1).contiguous().numpy()
    files = {name: _png_bytes(image) for name, image in zip(names, hwc)}
    files["dataset.json"] = json.dumps({"labels": None if labels is None else [[n, int(c)] for n, c in zip(names, labels)]}).encode()
    files["protocol.json"] = json.dumps(protocol, indent=2, sort_keys=True, default=str).encode()
    return files


def export_images(images: Tensor, labels: Optional[Tensor], protocol: dict[str, Any], target: str | Path) -> Path:
    """Write uint8 (N, C, H, W) images (C 1 or 3) to `target` (DIR, .zip or .npz), complete or not at
    all: written beside it under a temporary name, then renamed."""
    path = check_target(target)
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
        raise UserError(f"Only grey or RGB images export, and these have shape {tuple(images.shape)}: export an image run.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        if path.suffix.lower() == ".npz":
            built = tmp / "set.npz"
            extra = {} if labels is None else {"labels": labels.long().numpy()}
            np.savez(built, arr_0=images.permute(0, 2, 3, 1).contiguous().numpy(), **extra,
                     protocol=np.asarray(json.dumps(protocol, sort_keys=True, default=str)))
        elif path.suffix.lower() == ".zip":
            built = tmp / "set.zip"
            with zipfile.ZipFile(built, "w", compression=zipfile.ZIP_STORED) as z:
                for name, data in _files(images, labels, protocol).items():
                    z.writestr(name, data)
        else:
            built = tmp / "set"
            built.mkdir()
            for name, data in _files(images, labels, protocol).items():
                (built / name).write_bytes(data)
        check_target(path)  # again: another process may have made it meanwhile
        os.rename(built, path) if built.is_dir() else os.link(built, path)  # a file link fails rather than overwrite
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


# -- reading ------------------------------------------------------------------------------------
def _decode(data: bytes, name: str, source: Path) -> np.ndarray:
    """Image bytes -> uint8 (H, W, C), C 1 for grey images and 3 otherwise (alpha dropped)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            grey = image.mode in ("1", "L", "I", "I;16", "F")
            arr = np.asarray(image.convert("L" if grey else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"'{name}' in '{source}' cannot be read as an image ({type(e).__name__}): remove or replace it.") from None
    return arr[..., None] if arr.ndim == 2 else arr


def _stack(arrays: list[np.ndarray], names: list[str], source: Path) -> Tensor:
    """(H, W, C) arrays of one size -> uint8 (N, C, H, W); one sentence for mixed sizes or channels."""
    first = arrays[0].shape
    for arr, name in zip(arrays, names):
        if arr.shape != first:
            what = "channels" if arr.shape[:2] == first[:2] else "resolutions"
            raise UserError(f"'{source}' mixes {what}: '{names[0]}' is {_size(first)} but '{name}' is {_size(arr.shape)}, "
                            "so resize them to one size (and mode) first.")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _size(hwc: tuple[int, ...]) -> str:
    return f"{hwc[1]} x {hwc[0]} {'grey' if hwc[2] == 1 else 'RGB'}"


def _labels(meta: Optional[bytes], names: list[str]) -> Optional[Tensor]:
    """Labels from a dataset.json of stylegan2-ada's layout, in the order of `names`; None without them."""
    if not meta:
        return None
    labels = dict((str(n), int(c)) for n, c in (json.loads(meta).get("labels") or []))
    return torch.tensor([labels[n] for n in names], dtype=torch.long) if labels and all(n in labels for n in names) else None


def _read_entries(entries: dict[str, bytes], meta: dict[str, bytes], source: Path) -> ImageSet:
    names = sorted(entries)
    if not names:
        raise UserError(f"'{source}' holds no image files ({', '.join(IMAGE_SUFFIXES)}): point it at {FORMATS} of images.")
    images = _stack([_decode(entries[n], n, source) for n in names], names, source)
    protocol = json.loads(meta["protocol.json"]) if meta.get("protocol.json") else {}
    return ImageSet(images, _labels(meta.get("dataset.json"), names), protocol, str(source))


def _read_folder(path: Path) -> ImageSet:
    try:
        files = sorted(p for p in path.iterdir() if p.is_file())
        entries = {p.name: p.read_bytes() for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
        meta = {p.name: p.read_bytes() for p in files if p.name in ("dataset.json", "protocol.json")}
    except OSError as e:
        raise UserError(f"The folder '{path}' cannot be read ({e.strerror or type(e).__name__}): check its permissions.") from None
    return _read_entries(entries, meta, path)


def _read_zip(path: Path) -> ImageSet:
    try:
        with zipfile.ZipFile(path) as z:
            members = [m for m in z.namelist() if not m.endswith("/")]
            entries = {m: z.read(m) for m in members if Path(m).suffix.lower() in IMAGE_SUFFIXES}
            meta = {m: z.read(m) for m in members if m in ("dataset.json", "protocol.json")}
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"'{path}' cannot be read as a zip of images ({type(e).__name__}): pass {FORMATS} of images.") from None
    return _read_entries(entries, meta, path)


def _read_npz(path: Path) -> ImageSet:
    try:
        with np.load(path, allow_pickle=False) as data:
            key = "arr_0" if "arr_0" in data else "images" if "images" in data else None
            if key is None:
                raise UserError(f"'{path}' holds no 'arr_0' or 'images' array: store the images as arr_0, uint8 (N, H, W, C).")
            arr = np.asarray(data[key])
            labels = torch.from_numpy(np.asarray(data["labels"], dtype=np.int64)) if "labels" in data else None
            protocol = json.loads(str(data["protocol"])) if "protocol" in data else {}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"'{path}' cannot be read as an .npz of images ({type(e).__name__}): pass {FORMATS} of images.") from None
    if arr.dtype != np.uint8 or arr.ndim != 4 or (arr.shape[-1] not in (1, 3) and arr.shape[1] not in (1, 3)):
        raise UserError(f"'{path}' holds {arr.dtype} images of shape {arr.shape}: store uint8 (N, H, W, C) with C 1 or 3.")
    images = torch.from_numpy(arr)
    images = images.permute(0, 3, 1, 2) if arr.shape[-1] in (1, 3) else images
    return ImageSet(images.contiguous(), labels, protocol, str(path))


def read_image_set(source: str | Path) -> ImageSet:
    """The images at `source` (a folder, a .zip or an .npz), checked to be one size and readable."""
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"'{path}' does not exist: pass {FORMATS} of images.")
    if path.is_dir():
        found = _read_folder(path)
    elif path.suffix.lower() == ".npz":
        found = _read_npz(path)
    elif path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
        found = _read_zip(path)
    else:
        raise UserError(f"'{path}' is neither a folder nor a .zip or .npz: pass {FORMATS} of images.")
    if found.labels is not None and len(found.labels) != len(found.images):
        raise UserError(f"'{path}' has {len(found.labels)} labels for {len(found.images)} images: store one label per image.")
    return found


def check_shape(found: ImageSet, shape: tuple[int, ...], what: str) -> None:
    """One sentence when the set's images are not of `shape` (C, H, W), the shape `what` measures."""
    if tuple(found.images.shape[1:]) != tuple(shape):
        c, h, w = found.images.shape[1:]
        raise UserError(f"The images in '{found.source}' are {w} x {h} with {c} channel(s), but {what} has "
                        f"{shape[2]} x {shape[1]} with {shape[0]}: resize them to the run's size first.")
