"""Draw samples from a trained generator: any class of a conditional run, or an unconditional one.

    python -m gan_platform.sample RUN_DIR_OR_CHECKPOINT --classes 3,7 --n 16 --out FILE.png [--raw FILE.pt] [--raw-generator]

G is rebuilt from the checkpoint alone (its constructor arguments are saved beside the weights;
runs/loading.py, the loader `gan_platform.translate` shares), loaded safely. What G was built for
(sample shape, classes) is read from the checkpoint itself. A run trained with `trainer.ema` samples
from G's moving average; `--raw-generator` takes the trained G itself.
Images are written as a grid with one row per requested class (`--n` samples a row); 2-D points as
a scatter plot coloured by class. Mistakes (not a run dir, a class out of range) are one sentence
and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from gan_platform.errors import UserError, report_and_exit


@dataclass
class TrainedGenerator:
    """A generator rebuilt from a run, in eval mode on the CPU."""

    generator: nn.Module
    cfg: Optional[DictConfig]   # the run's config, when the checkpoint is in a run dir
    run_dir: Optional[Path]
    checkpoint: Path
    step: int
    sample_shape: tuple[int, ...]
    num_classes: int
    class_names: Optional[list[str]]
    z_dim: int

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, seed: int = 0, batch_size: int = 500) -> Tensor:
        """n samples (float32, CPU); `labels` (n,) picks the classes of a conditional generator."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=g)
        if self.num_classes and labels is None:
            labels = torch.randint(self.num_classes, (n,), generator=g)
        out = []
        for i in range(0, n, batch_size):
            y = labels[i:i + batch_size] if labels is not None else None
            out.append(self.generator(z[i:i + batch_size], y).float())
        return torch.cat(out) if out else torch.zeros((0, *self.sample_shape))


def load_generator(path: str | Path, checkpoint: str = "last", raw: bool = False) -> TrainedGenerator:
    """G of the run at `path`, from checkpoints/`checkpoint` (runs/loading.py: the checkpoint alone
    rebuilds it): its moving average when the run kept one (trainer.ema), unless `raw`."""
    from gan_platform.runs.loading import load_trained

    trained = load_trained(path, ("generator",), checkpoint, task="gan", raw=raw)
    spec, args = trained.task_state, trained.model_args["generator"]
    shape = tuple(spec.get("sample_shape") or args["out_shape"])
    num_classes, names = int(spec.get("num_classes", args.get("num_classes") or 0)), spec.get("class_names")
    G = trained.modules["generator"]
    z_dim = int(G.z_dim)
    return TrainedGenerator(G, trained.cfg, trained.run_dir, trained.checkpoint, trained.step, shape, num_classes,
                            list(names) if names else None, z_dim)


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
    ax.scatter(p[:, 0], p[:, 1], s=4, c=None if labels is None else labels.numpy(), cmap="tab10")
    ax.set_aspect("equal")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def main(argv: Optional[Sequence[str]] = None) -> int:
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
    args = parser.parse_args(argv)
    try:
        if args.n < 1:
            raise UserError(f"--n must be at least 1, got {args.n}.")
        trained = load_generator(args.path, args.checkpoint, raw=args.raw_generator)
        classes = parse_classes(args.classes, trained)
        labels = torch.tensor(classes).repeat_interleave(args.n) if classes else None
        samples = trained.sample(len(labels) if labels is not None else args.n, labels, seed=args.seed)
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
