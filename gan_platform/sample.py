"""Draw samples from a trained generator: any class of a conditional run, or an unconditional one.

    python -m gan_platform.sample RUN_DIR_OR_CHECKPOINT --classes 3,7 --n 16 --out FILE.png [--raw FILE.pt]
    python -m gan_platform.sample RUN_DIR --truncation 0.7          # the truncation trick (in W for StyleGAN2)
    python -m gan_platform.sample RUN_DIR --style-mix 4             # StyleGAN2: layers 4.. styled by the latents of --seed + 1
    python -m gan_platform.sample RUN_DIR --interpolate 24          # a GIF (and its frames) between latents
    python -m gan_platform.sample RUN_DIR --export 50000 --out samples.zip   # uint8 images for outside FID tools (DIR, .zip, .npz)

G is rebuilt from the checkpoint alone (its constructor arguments are saved beside the weights;
runs/loading.py, the loader `gan_platform.translate` shares), loaded safely; the EMA generator is
used when the checkpoint holds one (`--raw-generator`: the raw one). What G was built for (sample shape,
classes) is read from the checkpoint itself. Truncation (in W for a generator with a mapping network,
else in z), style mixing and spherical interpolation: runs/generator.py. `--style-mix K` draws a
second set of latents, those `--seed + 1` would draw, and gives every sample the styles of its first
latent in layers 0..K-1 and of its second latent from layer K on: coarse features from the one,
fine from the other.
`--interpolate N` writes N frames walking by slerp from one set of random latents to another and
back, `--n` walks side by side, one row per class for conditional runs (the same latents in every row).
Images are written as a grid with one row per requested class (`--n` samples a row); 2-D points as
a scatter plot coloured by class. `--export N --out TARGET` writes N samples as uint8 images (PNGs in
a folder or a zip, or an npz array; evaluation/image_sets.py) with the protocol beside them: sample
i has latent i of seed `--seed` and class i mod C, the set `gan_platform.evaluate --seed S` measures
as its first, so `gan_platform.evaluate RUN --fake TARGET` (or clean-fid, torch-fidelity, a paper's
own script) scores the same images. Mistakes (not a run dir, a class out of range, an export target
that exists) are one sentence and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import Tensor

from gan_platform.errors import UserError, report_and_exit
from gan_platform.runs.generator import TrainedGenerator, load_generator, slerp  # noqa: F401 - load_generator is public here


def parse_classes(text: Optional[str], trained: TrainedGenerator) -> list[int]:
    """'3,7' (indices or class names) -> class indices, checked against the run's classes."""
    if not trained.num_classes:
        if text:
            raise UserError(f"Run '{trained.run_dir}' is unconditional, so it has no classes to pick: drop --classes.")
        return []
    if not text:
        return list(range(trained.num_classes))
    names = trained.class_names or []
    classes = []
    for token in (t.strip() for t in text.split(",") if t.strip()):
        if token in names and not token.lstrip("-").isdigit():
            classes.append(names.index(token))
            continue
        try:
            c = int(token)
        except ValueError:
            raise UserError(f"Class '{token}' is neither a class index nor a class name of this run: "
                            f"use 0..{trained.num_classes - 1}{' or ' + ', '.join(names) if names else ''}.") from None
        if not 0 <= c < trained.num_classes:
            raise UserError(f"Class {c} is out of range: this run has {trained.num_classes} classes, 0..{trained.num_classes - 1}.")
        classes.append(c)
    if not classes:
        raise UserError("--classes is empty: list class indices such as --classes 3,7.")
    return classes


def picture_of(samples: Tensor, labels: Optional[Tensor], rows: int):
    """A grid (images, one row per class) or a scatter plot (points, coloured by class)."""
    from gan_platform.tracking.pictures import image_grid, upscale

    if samples.dim() == 4:
        return upscale(image_grid(samples, rows=rows))
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    p = samples.flatten(1)[:, :2].numpy()
    colours = {} if labels is None else {"c": labels.numpy(), "cmap": "tab10"}  # a colour map only with classes to map
    ax.scatter(p[:, 0], p[:, 1], s=4, **colours)
    ax.set_aspect("equal")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def interpolation_frames(trained: TrainedGenerator, frames: int, walks: int, classes: list[int], seed: int = 0,
                         truncation: Optional[float] = None) -> list[Tensor]:
    """`frames` sample sets walking by slerp from latents A to B and back to A (a loop), `walks`
    columns; rows are `classes` for a conditional run (the same latents in every row)."""
    if len(trained.sample_shape) != 3:
        raise UserError("--interpolate needs an image generator, and this run generates points: draw points without it.")
    if frames < 2:
        raise UserError(f"--interpolate must be at least 2 frames, got {frames}.")
    a = trained.noise(walks, seed, truncation)
    b = trained.noise(walks, seed + 1, truncation)
    t = 1 - (1 - 2 * torch.arange(frames, dtype=torch.float64) / frames).abs()   # 0 -> 1 -> back toward 0
    path = slerp(a.double(), b.double(), t).float()                              # (frames, walks, z_dim)
    rows = classes or [None]
    out = []
    for z in path:
        zs = z.repeat(len(rows), 1)
        labels = torch.tensor(rows).repeat_interleave(walks) if classes else None
        out.append(trained.sample(len(zs), labels, z=zs, truncation=truncation))
    return out


def write_interpolation(frames: list[Tensor], rows: int, out: Path, fps: int = 12) -> Path:
    """frames -> `out` (a looping GIF) and `out`'s stem folder of PNG frames."""
    from PIL import Image

    from gan_platform.tracking.pictures import image_grid, save_png

    folder = out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    pictures = [image_grid(f, rows=rows) for f in frames]
    for i, picture in enumerate(pictures):
        save_png(picture, folder / f"frame_{i:04d}.png")
    images = [Image.fromarray(p) for p in pictures]
    images[0].save(out, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return out


EXPORT_LATENTS = "z_i from torch.Generator().manual_seed(seed), sample i of class i mod C (gan_platform.evaluate's first set)"


def export_samples(trained: TrainedGenerator, n: int, out: Optional[str], seed: int = 0,
                   truncation: Optional[float] = None, batch_size: int = 500) -> Path:
    """`n` samples as uint8 images at `out` (DIR, .zip or .npz) with their protocol; the target is
    checked before any sample is drawn."""
    import hashlib

    from gan_platform.evaluation.image_sets import check_target, export_images, to_uint8

    if not out:
        raise UserError("--export needs --out: a new folder, FILE.zip or FILE.npz to write the images to.")
    if len(trained.sample_shape) != 3:
        raise UserError("--export writes images, and this run generates 2-D points: save them with --raw FILE.pt instead.")
    if n < 1:
        raise UserError(f"--export must be at least 1 sample, got {n}.")
    check_target(out)
    labels = torch.arange(n) % trained.num_classes if trained.num_classes else None
    images = to_uint8(trained.sample(n, labels, z=trained.noise(n, seed, truncation), batch_size=batch_size,
                                     truncation=truncation))
    protocol = {"generator": trained.network, "run_dir": str(trained.run_dir) if trained.run_dir else None,
                "checkpoint": str(trained.checkpoint), "step": trained.step, "seed": seed, "truncation": truncation,
                "num_samples": n, "latents": EXPORT_LATENTS, "image_shape": list(images.shape[1:]),
                "uint8": "round((x + 1) * 127.5) of x clamped to [-1, 1]",
                "images_sha256": hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()}
    return export_images(images, labels, protocol, out)


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m gan_platform.sample` (`gan-sample`)."""
    parser = argparse.ArgumentParser(prog="python -m gan_platform.sample", description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a run dir (outputs/NAME/TIME) or a checkpoint folder in one")
    parser.add_argument("--classes", default=None, help="conditional runs: class indices or names, e.g. 3,7 (default: all)")
    parser.add_argument("--n", type=int, default=16, help="samples per class (conditional) or in all (unconditional)")
    parser.add_argument("--out", default=None, help="picture to write (default: RUN_DIR/samples/sampled.png)")
    parser.add_argument("--raw", default=None, help="also save the samples and labels as a .pt file")
    parser.add_argument("--checkpoint", default="last", choices=("last", "best"), help="which checkpoint of a run dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--raw-generator", action="store_true",
                        help="a run trained with trainer.ema: sample from G itself, not from its moving average")
    parser.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="truncation trick: w toward its average, w_avg + PSI (w - w_avg), for a generator with W "
                             "(StyleGAN2; 1 none, 0 the average image); else every latent entry beyond +-PSI redrawn (e.g. 0.7)")
    parser.add_argument("--style-mix", dest="style_mix", type=int, default=None, metavar="K",
                        help="StyleGAN2: layers K.. take their styles from the latents --seed + 1 would draw")
    parser.add_argument("--interpolate", type=int, default=None, metavar="N",
                        help="write a GIF of N frames (and the frames) walking between random latents")
    parser.add_argument("--export", type=int, default=None, metavar="N",
                        help="write N samples as uint8 images to --out (a folder, FILE.zip or FILE.npz) with their protocol")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.n < 1:
            raise UserError(f"--n must be at least 1, got {args.n}.")
        if args.style_mix is not None and args.interpolate is not None:
            raise UserError("--style-mix and --interpolate draw different pictures: pass one of them.")
        trained = load_generator(args.path, args.checkpoint, raw=args.raw_generator)
        if args.export is not None:
            out = export_samples(trained, args.export, args.out, args.seed, args.truncation)
            print(f"wrote {args.export} samples to {out} (step {trained.step} of {trained.run_dir or trained.checkpoint})")
            return 0
        classes = parse_classes(args.classes, trained)
        if args.interpolate is not None:
            frames = interpolation_frames(trained, args.interpolate, args.n, classes, args.seed, args.truncation)
            out = Path(args.out) if args.out else (trained.run_dir or trained.checkpoint.parent) / "samples" / "interpolation.gif"
            write_interpolation(frames, max(1, len(classes)), out.with_suffix(".gif"))
            print(f"wrote {out.with_suffix('.gif')} and {len(frames)} frames in {out.with_suffix('')} "
                  f"(step {trained.step} of {trained.run_dir})")
            return 0
        labels = torch.tensor(classes).repeat_interleave(args.n) if classes else None
        n = len(labels) if labels is not None else args.n
        mixing = {} if args.style_mix is None else {"mix_z": trained.noise(n, args.seed + 1), "cutoff": args.style_mix}
        samples = trained.sample(n, labels, seed=args.seed, truncation=args.truncation, **mixing)
        out = Path(args.out) if args.out else (trained.run_dir or trained.checkpoint.parent) / "samples" / "sampled.png"
        from gan_platform.tracking.pictures import save_png

        out.parent.mkdir(parents=True, exist_ok=True)
        save_png(picture_of(samples, labels, rows=len(classes)), out)
        if args.raw:
            Path(args.raw).parent.mkdir(parents=True, exist_ok=True)
            torch.save({"samples": samples, "labels": labels, "step": trained.step}, args.raw)
    except UserError as e:
        report_and_exit(e)
    print(f"wrote {out}" + (f" and {args.raw}" if args.raw else "") + f" (step {trained.step} of {trained.run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
