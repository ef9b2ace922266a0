"""The truncation and style-mixing pictures of docs/models.md, from a trained StyleGAN2 run.

    python -m gan_platform +experiment=stylegan2_digits32 trainer.steps=500          # or any StyleGAN2 run
    python benchmarks/stylegan2_pictures.py outputs/stylegan2_digits32/TIME --out docs

Truncation (`stylegan2_truncation.png`): one row per psi in 1, 0.7, 0.5, 0; the columns are the
same latents and classes in every row (class c in column c), so each column shows one sample moving
toward the average as psi falls; at psi = 0 every z of a class gives the same image, W's average.
Style mixing (`stylegan2_style_mixing.png`): the first row's latents (A) give the coarse layers,
the first column's (B) the fine ones; cell (B, A) takes layers 0..K-1 from A and K.. from B, for the
cutoff K given (`--cutoff`, 4 of the 8 layers at 32 x 32 by default). Both go through
`TrainedGenerator.sample` (`truncation=`, `mix_z=`/`cutoff=`), the calls `gan_platform.sample`
makes for `--truncation` and `--style-mix`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]


def to_tiles(x: torch.Tensor, scale: int) -> list[Image.Image]:
    """[-1, 1] images (N, C, H, W) as PIL tiles upscaled by `scale` (nearest)."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    tiles = []
    for img in x:
        arr = img.permute(1, 2, 0).numpy()
        tile = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).convert("RGB")
        tiles.append(tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST))
    return tiles


def sheet(rows: list[list[Image.Image]], labels: list[str], margin: int = 64) -> Image.Image:
    """Rows of equal tiles with a text label on the left of each row (None tiles left blank)."""
    size = next(t for row in rows for t in row if t is not None).size
    cols = max(len(r) for r in rows)
    out = Image.new("RGB", (margin + cols * (size[0] + 2), len(rows) * (size[1] + 2)), "white")
    draw = ImageDraw.Draw(out)
    for r, (row, label) in enumerate(zip(rows, labels)):
        y = r * (size[1] + 2)
        draw.text((4, y + size[1] // 2 - 5), label, fill="black")
        for c, tile in enumerate(row):
            if tile is not None:
                out.paste(tile, (margin + c * (size[0] + 2), y))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--cutoff", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=int, default=2)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    from gan_platform.runs.generator import load_generator

    G = load_generator(args.run)
    if not G.has_w:
        sys.exit(f"{args.run} was not trained with a generator that has W (model=stylegan2): truncation in W and style mixing need one.")
    n = G.num_classes or 10
    labels = torch.arange(n) if G.num_classes else None
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(args.seed))
    psis = [1.0, 0.7, 0.5, 0.0]
    rows = [to_tiles(G.sample(n, labels, z=z, truncation=psi), args.scale) for psi in psis]
    args.out.mkdir(parents=True, exist_ok=True)
    sheet(rows, [f"psi {psi:g}" for psi in psis]).save(args.out / "stylegan2_truncation.png")

    k = 6  # sources on each side; A and B of the same class, so that the mix shows styles, not labels
    y = torch.full((k,), 3, dtype=torch.long) if G.num_classes else None
    g = torch.Generator().manual_seed(args.seed + 1)
    za, zb = torch.randn(k, G.z_dim, generator=g), torch.randn(k, G.z_dim, generator=g)
    a, b = to_tiles(G.sample(k, y, z=za), args.scale), to_tiles(G.sample(k, y, z=zb), args.scale)
    rows, labels_ = [[None, *a]], ["A: coarse"]
    for i in range(k):
        mixed = G.sample(k, y, z=za, mix_z=zb[i:i + 1].expand(k, -1), cutoff=args.cutoff)
        rows.append([b[i], *to_tiles(mixed, args.scale)])
        labels_.append("B: fine" if i == 0 else "")
    sheet(rows, labels_).save(args.out / "stylegan2_style_mixing.png")
    print(f"wrote {args.out / 'stylegan2_truncation.png'} and {args.out / 'stylegan2_style_mixing.png'}")


if __name__ == "__main__":
    main()
