"""Translate a folder of images with a trained CycleGAN run.

    python -m gan_platform.translate RUN_DIR --direction a2b --input DIR --out DIR [--checkpoint best] [--raw-generator]

Rebuilds the generator from the run's checkpoint alone (checkpoints/last by default; its
constructor arguments are saved beside the weights, runs/loading.py; loaded with `weights_only`,
so a checkpoint cannot run code), reads every image file of DIR (resized on the short side and centre-cropped to the size the
model was trained at, converted to its channels) and writes each translation as a PNG of the same
name (`photo.jpg` -> `OUT/photo.png`). A run trained with `trainer.ema` translates with the moving
average of the generator (`--raw-generator`: the trained one). a2b uses G1 (style A -> B), b2a uses G2 (B -> A).
Mistakes (no such run, not a CycleGAN run, no images) are one sentence and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from gan_platform.data.base import decode_uint8
from gan_platform.errors import UserError, report_and_exit

GENERATORS = {"a2b": "generator_a2b", "b2a": "generator_b2a"}


def load_generator(run_dir: Path, direction: str, checkpoint: str = "last",
                   raw: bool = False) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The trained generator of `direction` (its moving average when the run kept one, unless `raw`)
    and the image shape (C, R, R) it was trained on (runs/loading.py: the checkpoint alone rebuilds it)."""
    from gan_platform.runs.loading import load_trained

    if not (Path(run_dir) / ".hydra" / "config.yaml").is_file():
        raise UserError(f"'{run_dir}' is not a run dir (no .hydra/config.yaml): pass the folder a CycleGAN run wrote.")
    trained = load_trained(run_dir, (GENERATORS[direction],), checkpoint, task="cyclegan", raw=raw)
    shape = tuple(int(s) for s in trained.task_state["image_shape"])
    return trained.modules[GENERATORS[direction]], shape


def translate_folder(run_dir: Path, direction: str, input_dir: Path, out_dir: Path, checkpoint: str = "last",
                     batch_size: int = 32, on_corrupt: str = "skip", raw: bool = False) -> list[Path]:
    """Translate every image of `input_dir` into `out_dir`; returns the files written."""
    from gan_platform.data.images import check_folder, list_images, load_images, write_image

    if direction not in GENERATORS:
        raise UserError(f"--direction must be a2b or b2a, got '{direction}'.")
    folder = check_folder(input_dir, "--input")
    paths = list_images(folder)
    if not paths:
        raise UserError(f"The --input folder '{folder}' holds no images (.png, .jpg, ...): point it at a folder of images.")
    generator, (channels, resolution, _) = load_generator(Path(run_dir), direction, checkpoint, raw)
    images, kept = load_images(paths, resolution, channels, on_corrupt, desc=folder.name)
    if not kept:
        raise UserError(f"None of the {len(paths)} files in '{folder}' could be read as an image: replace them.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with torch.no_grad():
        for i in tqdm(range(0, len(images), batch_size), desc=f"translating {direction}", disable=len(images) < 4 * batch_size):
            batch = decode_uint8(images[i:i + batch_size])
            result = ((generator(batch).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
            for j, array in enumerate(result):
                target = out / f"{paths[kept[i + j]].stem}.png"
                write_image(np.ascontiguousarray(array), target)
                written.append(target)
    return written


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_platform.translate",
                                     description="Translate a folder of images with a trained CycleGAN run.")
    parser.add_argument("run_dir", type=Path, help="the run dir of a CycleGAN run")
    parser.add_argument("--direction", default="a2b", help="a2b (G1: style A -> B) or b2a (G2: B -> A)")
    parser.add_argument("--input", required=True, type=Path, help="folder of images to translate")
    parser.add_argument("--out", required=True, type=Path, help="folder for the translated PNGs")
    parser.add_argument("--checkpoint", default="last", choices=("last", "best"), help="which checkpoint of the run")
    parser.add_argument("--batch-size", default=32, type=int)
    parser.add_argument("--on-corrupt", default="skip", choices=("skip", "error"), help="unreadable input images")
    parser.add_argument("--raw-generator", action="store_true",
                        help="a run trained with trainer.ema: translate with the generator itself, not its moving average")
    args = parser.parse_args(argv)
    try:
        written = translate_folder(args.run_dir, args.direction, args.input, args.out, args.checkpoint,
                                   args.batch_size, args.on_corrupt, args.raw_generator)
    except UserError as e:
        report_and_exit(e)
    print(f"Translated {len(written)} image(s) {args.direction} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
