"""`nearest_neighbours.png`: generated samples beside their nearest training images.

One row per generated sample: the sample, then its `m` nearest training images in feature space,
then its `m` nearest in pixel space, each tile captioned with its distance (d=...). A copying
generator shows itself at a glance: the sample and its first neighbour are the same picture, at a
pixel distance near 0. Tiles are upscaled (nearest) to at least `TILE` pixels a side.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

TILE = 64
CAPTION = 14
GAP = 12


def _tile(image_u8: Tensor, side: int) -> Image.Image:
    """uint8 (C, H, W) -> an RGB tile `side` pixels wide (grey repeated, 3+ channels as RGB)."""
    arr = image_u8.detach().cpu().numpy()
    arr = np.repeat(arr[:1], 3, axis=0) if arr.shape[0] != 3 else arr
    tile = Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)), "RGB")
    scale = max(1, -(-side // max(tile.size)))
    return tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST)


def neighbours_picture(fake_u8: Tensor, train_u8: Tensor, feature_nn: tuple[Tensor, Tensor],
                       pixel_nn: tuple[Tensor, Tensor]) -> np.ndarray:
    """uint8 (H, W, 3): rows of [generated | nearest by features | nearest by pixels] with distances.
    `feature_nn`, `pixel_nn`: (distances (k, m), training indices (k, m))."""
    k, m = feature_nn[1].shape
    side = _tile(fake_u8[0], TILE).width
    height = side + CAPTION
    columns = 1 + 2 * m
    width = columns * (side + 4) + 2 * GAP
    canvas = Image.new("RGB", (width, CAPTION + 4 + k * (height + 4)), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    starts = [0] + [side + 4 + GAP + j * (side + 4) for j in range(m)] + \
             [side + 4 + 2 * GAP + (m + j) * (side + 4) for j in range(m)]
    for text, x in (("generated", starts[0]), ("nearest in features", starts[1]), ("nearest in pixels", starts[1 + m])):
        draw.text((x + 2, 2), text, fill="black", font=font)
    for row in range(k):
        y = CAPTION + 4 + row * (height + 4)
        tiles = [(fake_u8[row], None)]
        tiles += [(train_u8[int(i)], float(d)) for d, i in zip(feature_nn[0][row], feature_nn[1][row])]
        tiles += [(train_u8[int(i)], float(d)) for d, i in zip(pixel_nn[0][row], pixel_nn[1][row])]
        for (image, dist), x in zip(tiles, starts):
            canvas.paste(_tile(image, side), (x, y))
            if dist is not None:
                draw.text((x + 2, y + side + 1), f"d={dist:.3g}", fill="black", font=font)
    return np.asarray(canvas)
