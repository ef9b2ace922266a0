"""gan-dataset: pack images into one zip of PNGs with a dataset.json of labels (stylegan2-ada's layout).

    gan-dataset SOURCE DEST.zip --resolution N [options]
    python -m gan_platform.data.pack SOURCE DEST.zip --resolution N [options]

SOURCE is a folder of images (class subfolders become labels), another packed zip, the CIFAR-10 /
CIFAR-100 python tarball or folder, MNIST / Fashion-MNIST idx files, an LSUN-style LMDB, or a
Hugging Face dataset saved with save_to_disk; its format is told from its name and contents
(--source-format overrides). The zip trains with `dataset=zip dataset.path=DEST.zip` and reads in
stylegan2-ada, stylegan3, EDM and R3GAN. Recipes for CIFAR-10, FFHQ, AFHQ, LSUN and CelebA:
docs/datasets.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Optional

from gan_platform.errors import UserError, report_and_exit


def parse_resolution(text: Optional[str], transform: str, any_resolution: bool) -> tuple[Optional[int], Optional[int]]:
    """--resolution N (or RxH for center-crop-wide) -> (R, H), each refused in one sentence."""
    if text is None:
        if transform == "center-crop-wide":
            raise UserError("--transform center-crop-wide needs --resolution RxH (for example 512x384).")
        return None, None
    parts = text.lower().split("x")
    if len(parts) not in (1, 2) or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"--resolution must be a side N (or RxH with center-crop-wide), got '{text}'.")
    side, height = int(parts[0]), int(parts[-1])
    if len(parts) == 2 and transform != "center-crop-wide":
        raise UserError(f"--resolution {text} gives a band height, which only --transform center-crop-wide uses: pass "
                        f"--resolution {side}, or add --transform center-crop-wide.")
    if transform == "center-crop-wide" and (len(parts) == 1 or height > side):
        raise UserError(f"--transform center-crop-wide needs --resolution RxH with H at most R (for example 512x384), got '{text}'.")
    if not any_resolution and side & (side - 1):
        raise UserError(f"--resolution {side} is not a power of two, which the networks need (8, 16, 32, 64, ...): pass "
                        "a power of two, or --any-resolution to pack it anyway.")
    return side, (height if len(parts) == 2 else None)


def parser() -> argparse.ArgumentParser:
    from gan_platform.data.pack.convert import FORMATS
    from gan_platform.data.pack.transform import FILTERS, TRANSFORMS

    p = argparse.ArgumentParser(prog="gan-dataset", description=__doc__.split("\n\n")[0],
                                epilog="Recipes for CIFAR-10, FFHQ, AFHQ, LSUN and CelebA: docs/datasets.md.")
    p.add_argument("source", help="folder, zip, CIFAR tarball/folder, idx files, LMDB or saved HF dataset")
    p.add_argument("dest", help="the zip to write (DEST.zip)")
    p.add_argument("--resolution", help="output side N (a power of two), or RxH with --transform center-crop-wide; "
                                        "default: as stored (square, equal sizes)")
    p.add_argument("--transform", choices=TRANSFORMS, default="center-crop", help="how images become square (default center-crop)")
    p.add_argument("--resize-filter", choices=sorted(FILTERS), default="lanczos", help="resampling filter (default lanczos)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 grey or 3 RGB for every image; default: the first image's")
    p.add_argument("--max-images", type=int, help="stop after this many images")
    p.add_argument("--no-labels", action="store_true", help="pack unlabelled (class subfolders and label columns ignored)")
    p.add_argument("--class-names", help="comma-separated class names in label order (replaces the source's)")
    p.add_argument("--split", default="train", help="train or test (CIFAR, idx), or a saved DatasetDict's split")
    p.add_argument("--image-column", default="image", help="HF dataset: the column of images (default image)")
    p.add_argument("--label-column", default="auto", help="HF: the label column (auto: 'label' if any); CIFAR-100: fine_labels or coarse_labels")
    p.add_argument("--source-format", choices=FORMATS, default="auto", help="what SOURCE is (default: told from it)")
    p.add_argument("--on-corrupt", choices=("skip", "error"), default="skip", help="unreadable images: skip and count (default), or stop naming it")
    p.add_argument("--workers", type=int, help="processes decoding and encoding (0: this one; default: up to 8, "
                                               "none below 1,000 images)")
    p.add_argument("--png-compression", type=int, choices=range(10), default=0, metavar="0-9",
                   help="zlib level of the PNGs (default 0, stored: the fastest to read, as stylegan2-ada)")
    p.add_argument("--overwrite", action="store_true", help="replace DEST.zip if it exists (only once the new one is complete)")
    p.add_argument("--any-resolution", action="store_true", help="accept a side that is not a power of two")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def options_from(args: argparse.Namespace):
    """The parsed arguments as convert.Options, checked before any work."""
    from gan_platform.data.pack.convert import Options
    from gan_platform.data.pack.transform import Shape

    side, height = parse_resolution(args.resolution, args.transform, args.any_resolution)
    if args.max_images is not None and args.max_images < 1:
        raise UserError(f"--max-images must be at least 1, got {args.max_images}.")
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers must be 0 or more, got {args.workers}.")
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    label_column = None if args.label_column in ("none", "null") else args.label_column
    return Options(source=Path(args.source), dest=Path(args.dest).expanduser(),
                   shape=Shape(side, height, args.channels, args.transform, args.resize_filter),
                   source_format=args.source_format, labelled=not args.no_labels, split=args.split,
                   image_column=args.image_column, label_column=label_column, class_names=names,
                   max_images=args.max_images, on_corrupt=args.on_corrupt, workers=args.workers,
                   overwrite=args.overwrite, png_compression=args.png_compression, progress=not args.quiet)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds, so the temporary zip is removed


def main(argv: Optional[list[str]] = None) -> int:
    from gan_platform.data.pack.convert import pack

    args = parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        summary = pack(options_from(args), any_resolution=args.any_resolution)
    except UserError as e:
        report_and_exit(e)
    except KeyboardInterrupt:
        print("gan-dataset: stopped; nothing was written under the destination's name.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("\n".join(summary.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
