"""Image files into the in-memory uint8 form of `base.TensorDataset`.

Real datasets arrive as folders of PNG/JPEG files (class subfolders, or CycleGAN's trainA/trainB).
`load_images` reads them with Pillow, converts to the requested channels, resizes the short side to
`resolution` and centre-crops to a square. A file that cannot be decoded is skipped and counted
(``on_corrupt="skip"``, the default, with one warning naming how many and the first) or stops the
run with one sentence naming it (``on_corrupt="error"``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from gan_platform.errors import ConfigError, UserError

if TYPE_CHECKING:  # torch is imported where tensors are made, so that gan-dataset starts without it
    from torch import Tensor

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
ON_CORRUPT = ("skip", "error")


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder` (not recursive), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def check_folder(folder: str | Path, what: str = "dataset.root") -> Path:
    """`folder` as a Path that exists and is a directory, or one clear sentence."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise UserError(f"The {what} folder '{path}' does not exist: point {what} at a folder of images.")
    if not path.is_dir():
        raise UserError(f"{what} '{path}' is a file, not a folder: point {what} at a folder of images.")
    return path


def to_array(image: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """A PIL image -> uint8 (C, R, R): channel conversion, short side to R, centre crop."""
    image = image.convert("L" if channels == 1 else "RGB")
    w, h = image.size
    scale = resolution / min(w, h)
    if scale != 1:
        image = image.resize((max(resolution, round(w * scale)), max(resolution, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    left, top = (w - resolution) // 2, (h - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    arr = np.asarray(image, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def load_images(paths: Sequence[Path], resolution: int, channels: int = 3, on_corrupt: str = "skip",
                desc: str = "images") -> tuple[Tensor, list[int]]:
    """Decode `paths` into uint8 (N, C, R, R); returns the tensor and the indices of the paths kept."""
    if on_corrupt not in ON_CORRUPT:
        raise ConfigError(f"dataset.on_corrupt must be one of {', '.join(ON_CORRUPT)}, got '{on_corrupt}'.")
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels must be 1 or 3, got {channels}.")
    if resolution < 4:
        raise ConfigError(f"dataset.resolution must be at least 4, got {resolution}.")
    arrays, kept, bad = [], [], []
    for i, path in enumerate(tqdm(paths, desc=f"loading {desc}", disable=len(paths) < 500, leave=False)):
        try:
            with Image.open(path) as image:
                image.load()
                arrays.append(to_array(image, resolution, channels))
            kept.append(i)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            if on_corrupt == "error":
                raise UserError(f"Cannot read image '{path}' ({type(e).__name__}): remove or replace it, "
                                "or set dataset.on_corrupt=skip to skip unreadable images.") from e
            bad.append(path)
    if bad:
        log.warning("Skipped %d unreadable image(s) of %d in %s (first: %s).", len(bad), len(paths), desc, bad[0])
    if not arrays:
        import torch

        return torch.zeros((0, channels, resolution, resolution), dtype=torch.uint8), kept
    return stack_arrays(arrays), kept


def stack_arrays(arrays: Sequence[np.ndarray]) -> Tensor:
    """uint8 (C, R, R) arrays -> one (N, C, R, R) tensor, laid out as every image batch of the
    platform is (in memory or streamed), so that convolutions see the same strides and train to
    the same bits."""
    import torch

    return torch.from_numpy(np.stack(arrays))



def write_image(array_u8: np.ndarray, path: Path) -> None:
    """uint8 (C, H, W) or (H, W, C) -> an image file (format from the suffix)."""
    arr = array_u8
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    Image.fromarray(arr).save(path)


__all__ = ["IMAGE_SUFFIXES", "list_images", "check_folder", "to_array", "load_images", "stack_arrays", "write_image"]
