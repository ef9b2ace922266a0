"""What `gan-dataset` does to each image: channels, crop, size; then it is encoded as a plain PNG.

Transforms (`--transform`), for an output of R x R (`--resolution R`):

    center-crop       the central square of side min(w, h), resized to R x R (the default; stylegan2-ada's)
    center-crop-wide  for `--resolution RxH` (H <= R): the central band of aspect R:H, resized to R x H and
                      placed in the middle of a black R x R canvas (stylegan2-ada's layout for LSUN cars,
                      512x384, with the band's aspect kept); an image narrower than R, or whose band is
                      lower than H, is skipped and counted
    pad               the whole image on a black R x R canvas, centred; scaled down first (aspect kept) when
                      its long side exceeds R, never up (MNIST's 28 x 28 into 32 x 32: two black pixels a side,
                      as stylegan2-ada's tool pads MNIST)

Without `--resolution` the images are kept at their size, which must be square and the same for all.
Resizing uses `--resize-filter` (lanczos, stylegan2-ada's default; box for FFHQ at 256, as its
authors did; bicubic; bilinear).

Channels: `--channels 1` or `3` converts every image (an alpha channel is dropped). Without it the
set takes the first image's channels, and the rest are reconciled where nothing is lost: a grey
image in a colour set becomes RGB. A colour image in a grey set, or an image with an alpha
channel, cannot be reconciled and is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

TRANSFORMS = ("center-crop", "center-crop-wide", "pad")
FILTERS = {"lanczos": Image.LANCZOS, "box": Image.BOX, "bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}
GREY = ("1", "L", "I", "I;16", "I;16B", "I;16L", "F")
ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


class Refused(Exception):
    """An image the settings cannot turn into the set's form without losing something (a sentence)."""


@dataclass(frozen=True)
class Shape:
    """The output form: side R (None: every image kept at `stored`, the first image's side), band
    height H (center-crop-wide), channels (None until the first image gives them)."""

    resolution: Optional[int]
    height: Optional[int] = None
    channels: Optional[int] = None
    transform: str = "center-crop"
    resize_filter: str = "lanczos"
    stored: Optional[int] = None

    @property
    def side(self) -> Optional[int]:
        return self.resolution or self.stored


def native_channels(image: Image.Image) -> Optional[int]:
    """1 for grey modes, 3 for colour ones, None for modes with alpha (which need --channels)."""
    if image.mode in ALPHA or (image.mode == "P" and "transparency" in image.info):
        return None
    return 1 if image.mode in GREY else 3


def convert(image: Image.Image, channels: Optional[int], explicit: bool, origin: str) -> Image.Image:
    """`image` as L or RGB: converted when the channels were given, else reconciled losslessly or refused."""
    if not explicit:
        native = native_channels(image)
        if native is None:
            raise Refused(f"{origin} has an alpha channel ({image.mode}): pass --channels 3 (or 1) to drop it.")
        if native == 3 and channels == 1:
            raise Refused(f"{origin} is in colour while the images before it are grey: pass --channels 3 (grey images "
                          "become RGB) or --channels 1 (every image to grey).")
    target = "L" if channels == 1 else "RGB"
    if image.mode == target:
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # more than 8 bits: scale to 0..255 before L
        image = Image.fromarray(_to_uint8(np.asarray(image)))
    return image.convert(target)


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """16-bit or float grey pixels to uint8, by their type's range (0..65535 or 0..1)."""
    if pixels.dtype == np.float32:
        return (np.clip(pixels, 0, 1) * 255 + 0.5).astype(np.uint8)
    return (pixels.astype(np.uint32) * 255 // 65535).astype(np.uint8)


def _resize(image: Image.Image, size: tuple[int, int], resize_filter: str) -> Image.Image:
    return image if image.size == size else image.resize(size, FILTERS[resize_filter])


def center_crop(image: Image.Image, side: int, resize_filter: str) -> Image.Image:
    w, h = image.size
    crop = min(w, h)
    left, top = (w - crop) // 2, (h - crop) // 2
    return _resize(image.crop((left, top, left + crop, top + crop)), (side, side), resize_filter)


def center_crop_wide(image: Image.Image, side: int, height: int, resize_filter: str) -> Optional[Image.Image]:
    w, h = image.size
    band = int(round(side * h / w))  # the band's height in the source once its width is scaled to `side`
    if w < side or band < height:
        return None
    crop_h = min(h, int(round(w * height / side)))  # the source rows that become the R x H band
    top = (h - crop_h) // 2
    strip = _resize(image.crop((0, top, w, top + crop_h)), (side, height), resize_filter)
    canvas = Image.new(strip.mode, (side, side))
    canvas.paste(strip, (0, (side - height) // 2))
    return canvas


def pad(image: Image.Image, side: int, resize_filter: str) -> Image.Image:
    w, h = image.size
    if max(w, h) > side:
        scale = side / max(w, h)
        image = _resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), resize_filter)
        w, h = image.size
    canvas = Image.new(image.mode, (side, side))
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def fit(image: Image.Image, shape: Shape) -> Optional[Image.Image]:
    """`image` (already L or RGB) in the output size; None when center-crop-wide finds it too small."""
    if shape.resolution is None:
        return image
    if shape.transform == "center-crop-wide":
        return center_crop_wide(image, shape.resolution, shape.height or shape.resolution, shape.resize_filter)
    if shape.transform == "pad":
        return pad(image, shape.resolution, shape.resize_filter)
    return center_crop(image, shape.resolution, shape.resize_filter)
