"""One evaluation after training (`gan_platform.evaluate`): what is measured (a trained generator, or
any set of images), against what (the run's data, a dataset config's, or a reference statistics
file), with which features, which metrics apply, and where the record goes.

Every check a user's input can fail runs in `Session.open` and applicable.py's `check_metrics` and
`applicable_metrics`, before any sample is drawn or any feature extracted: a `--name` already
taken, `--fake` images of another size than the run's, a reference file of other features, a
metric that cannot apply, no metric that applies at all, real statistics on raw pixels.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import torch
from omegaconf import OmegaConf

from gan_platform.data.base import Evaluation
from gan_platform.errors import UserError, instantiate
from gan_platform.evaluation.applicable import check_flags, refuse_pixel_reference
from gan_platform.evaluation.build import check_eval_config, complete, gan_evaluator
from gan_platform.evaluation.features import fid_applies, resolve_extractor_name
from gan_platform.evaluation.gan_evaluator import GANEvaluator
from gan_platform.evaluation.image_sets import ImageSet, check_shape, read_image_set, to_uint8
from gan_platform.evaluation.options import BeyondFID
from gan_platform.evaluation.records import check_name_free, write_record

FLAGS = ("features", "resize", "inception_weights", "num_real", "batch_size", "is_splits", "heldout")
LATENTS = "z_i of set k from torch.Generator().manual_seed(seed_k), sample i of class i mod C"


def eval_node(cfg: Any, args: Any, overrides: list[str]):
    """The run's (or composed config's) `eval` node over the defaults (evaluation/build.complete), with
    `eval.KEY=VALUE` and the flags on top, checked."""
    ev = complete(cfg.get("eval") if cfg is not None else None)
    for item in overrides:
        key, _, value = item.partition("=")
        if not key.startswith("eval.") or not value:
            raise UserError(f"'{item}' changes the run itself: beside a run dir, only eval.KEY=VALUE settings apply.")
        OmegaConf.update(ev, key.removeprefix("eval."), _parsed(value), force_add=True)
    for key in FLAGS:
        if getattr(args, key, None) is not None:
            ev[key] = getattr(args, key)
    check_eval_config(OmegaConf.create({"eval": ev}))
    return ev


def _parsed(value: str) -> Any:
    """A command-line value as YAML reads it (numbers, true/false, null, lists), else the string."""
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


@dataclass
class Session:
    """The generator or image set under evaluation, its real data and features, and its record."""

    args: Any
    acc: Any
    trained: Any                     # runs.generator.TrainedGenerator, or None for --fake
    fake: Optional[ImageSet]
    cfg: Any
    ev: Any
    dataset: Any
    reference: Any
    extractor_name: str
    fits: bool
    out_dir: Path
    name: str
    options: BeyondFID
    evaluator: Optional[GANEvaluator] = None
    fd_inf_values: list = field(default_factory=list)

    @property
    def batch_size(self) -> int:
        return int(self.ev.batch_size)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.fake.images.shape[1:]) if self.fake is not None else tuple(self.trained.sample_shape)

    @classmethod
    def open(cls, args: Any, path: Optional[str], overrides: list[str], composed: Any = None) -> "Session":
        """Everything the evaluation needs that can be checked before any work; one sentence for each problem."""
        from accelerate import Accelerator

        from gan_platform.evaluation.reference import load_reference
        from gan_platform.runs.generator import load_generator

        check_flags(args)
        if path is None and args.fake is None:
            raise UserError("Nothing to evaluate: pass a run dir (or checkpoint folder), or --fake IMAGES with a run dir, "
                            "dataset=NAME or --ref FILE.npz.")
        trained = load_generator(path, args.checkpoint, raw=args.raw) if path is not None else None
        fake = read_image_set(args.fake) if args.fake is not None else None
        cfg = trained.cfg if trained is not None and trained.cfg is not None else composed
        ev = eval_node(cfg, args, overrides if trained is not None else [])
        reference = load_reference(args.ref) if args.ref else None
        dataset = cls._dataset(cfg, reference, trained, fake, path or args.fake)
        if reference is not None and args.features is None and cfg is None and reference.protocol.get("extractor"):
            ev.features = str(reference.protocol["extractor"])
        shape = tuple(trained.sample_shape) if trained is not None else getattr(dataset, "sample_shape", None)
        if fake is not None and shape is not None:
            check_shape(fake, shape, f"'{path}'" if trained is not None else f"the data ('{dataset.name}')")
        name_ = resolve_extractor_name(str(ev.features), dataset, ev.inception_weights, ev)
        if args.save_ref and not fid_applies(name_, dataset, ev):
            refuse_pixel_reference(trained.sample_shape if trained is not None else fake.images.shape[1:])
        out_dir = Path(args.out_dir) if args.out_dir else (trained.run_dir or trained.checkpoint.parent) if trained else Path.cwd()
        if args.name:
            check_name_free(out_dir, args.name)
        if fake is not None:
            fake = _first(fake, args.num_samples)
        n = args.num_samples = len(fake.images) if fake is not None else args.num_samples or 10000
        label = args.name or (f"fake_{Path(args.fake).stem}_{n}" if fake is not None else f"{args.checkpoint}_{trained.network}_{n}")
        acc = Accelerator()
        if trained is not None:
            trained.generator.to(acc.device)
        return cls(args, acc, trained, fake, cfg, ev, dataset, reference, name_, fid_applies(name_, dataset, ev),
                   out_dir, label, BeyondFID.from_config(ev))

    @staticmethod
    def _dataset(cfg: Any, reference: Any, trained: Any, fake: Optional[ImageSet], what: Any) -> Any:
        if cfg is not None:
            return instantiate(cfg.dataset)
        if reference is not None:  # no data at hand: the reference says what data and features it was made of
            shape = tuple(trained.sample_shape) if trained is not None else tuple(fake.images.shape[1:])
            kind = "points" if len(shape) == 1 else "images"
            made_with = Evaluation(features=str(reference.protocol["extractor"])) if reference.protocol.get("extractor") else None
            return SimpleNamespace(name=str(reference.protocol.get("dataset", "(unknown)")), sample_shape=shape, kind=kind,
                                   evaluation=made_with)
        raise UserError(f"'{what}' has no run dir around it, so there is no real data to compare with: pass --ref FILE.npz "
                        "(reference statistics), a run dir, or dataset=NAME.")

    def describe(self) -> str:
        if self.fake is not None:
            return f"{len(self.fake.images)} images from '{self.fake.source}'"
        return f"{self.args.seeds} set(s) of {self.args.num_samples} samples from {self.trained.network} at step {self.trained.step}"

    def fake_labels(self) -> Optional[torch.Tensor]:
        classes = int(getattr(self.dataset, "num_classes", 0) or 0)
        labels = self.fake.labels if self.fake is not None else None
        return labels.to(self.acc.device) if labels is not None and classes else None

    @property
    def num_classes(self) -> int:
        if self.fake is None:
            return int(self.trained.num_classes)
        return int(getattr(self.dataset, "num_classes", 0) or 0) if self.fake.labels is not None else 0

    def build_evaluator(self, options: BeyondFID) -> GANEvaluator:
        """The evaluator, by the one builder training uses too (evaluation/build.gan_evaluator)."""
        self.evaluator = gan_evaluator(self.ev, self.dataset, self.acc, num_classes=self.num_classes,
                                       sample_shape=self.sample_shape, num_samples=self.args.num_samples,
                                       reference=self.reference, reference_name=str(self.args.ref),
                                       extractor_name=self.extractor_name, options=options)
        return self.evaluator

    def save_reference(self, path: str) -> None:
        """The real statistics as a reference file (features that fit the data only: Session.open checks)."""
        from gan_platform.evaluation.reference import ReferenceStats, save_reference

        feats = self.evaluator.real_features
        if self.acc.is_main_process:
            protocol = {**self.evaluator.protocol(), "num_samples": self.evaluator.num_real, "dataset": self.dataset.name}
            for key in ("num_fake", "num_fake_used", "evaluations", "eval_seconds", "num_processes", "prdc_k", "prdc_counts",
                        "kid_subsets", "kid_subset_size", "kid_scale", "is_splits", "is_std", "real_statistics",
                        "fd_inf_counts", "fd_inf_fit", "memorization"):
                protocol.pop(key, None)
            save_reference(path, ReferenceStats.of(feats, protocol))

    def neighbours(self, features: torch.Tensor, rows: int, seed: int, truncation: Optional[float], n: int) -> dict:
        """The first set's samples nearest the training set, each with its nearest training images."""
        check = self.evaluator.copy_check
        if self.fake is not None:
            images = self.fake.images
        else:  # the samples again from their latents: only the few that are shown
            images = _LazySamples(self.trained, n, seed, truncation, self.batch_size)
        return check.neighbours(features, images, rows)

    def protocol(self, args: Any, metrics: Optional[set[str]]) -> dict[str, Any]:
        out = {k: v for k, v in self.evaluator.protocol().items() if k not in ("num_fake", "evaluations", "eval_seconds")}
        if self.fake is not None:
            digest = hashlib.sha256(self.fake.images.contiguous().numpy().tobytes()).hexdigest()
            out.update(fake=str(args.fake), fake_sha256=digest, fake_protocol=self.fake.protocol or None,
                       num_samples=len(self.fake.images), sample_sets=1)
        else:
            t = self.trained
            out.update(generator=t.network, checkpoint=str(t.checkpoint), step=t.step, truncation=args.truncation,
                       truncation_space=t.truncation_space if args.truncation is not None else None,
                       num_samples=args.num_samples, sample_sets=args.seeds, seeds=[args.seed + k for k in range(args.seeds)],
                       latents=LATENTS)
        out.update(reference=str(args.ref) if args.ref else None,
                   reference_protocol=self.reference.protocol if self.reference is not None else None,
                   metrics=sorted(metrics) if metrics else "all that apply", std="sample standard deviation over the sets")
        return out

    def write(self, report: dict[str, Any], found: Optional[dict]) -> Optional[Path]:
        """eval_<name>.json (and the nearest-neighbour picture) on the main process; its path."""
        if not self.acc.is_main_process:
            return None
        png = None
        if found is not None:
            from PIL import Image

            from gan_platform.evaluation.memorization import neighbours_record
            from gan_platform.evaluation.memorization.picture import neighbours_picture

            buf = io.BytesIO()
            Image.fromarray(neighbours_picture(found["images"], self.evaluator.copy_check.train_u8,
                                               found["features"], found["pixels"])).save(buf, format="PNG")
            png = buf.getvalue()
            report["nearest_neighbours"] = {"rows": neighbours_record(found)}
        path, _ = write_record(self.out_dir, self.name, bool(self.args.name), report, png)
        return path


def _first(found: ImageSet, n: Optional[int]) -> ImageSet:
    """The first `n` images of a set (all of them for None); one sentence when it holds fewer."""
    if n is None:
        return found
    if n > len(found.images):
        raise UserError(f"--num-samples {n} asks for more images than the {len(found.images)} in '{found.source}': "
                        "pass at most that many, or leave --num-samples out.")
    labels = found.labels[:n] if found.labels is not None else None
    return ImageSet(found.images[:n], labels, found.protocol, found.source)


class _LazySamples:
    """A generator's sample set indexed like a tensor of uint8 images, drawing only the rows asked for."""

    def __init__(self, trained: Any, n: int, seed: int, truncation: Optional[float], batch_size: int):
        self.trained, self.n, self.seed, self.truncation, self.batch_size = trained, n, seed, truncation, batch_size
        self.device = torch.device("cpu")

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.cpu()
        z = self.trained.noise(self.n, self.seed, self.truncation)[rows]
        labels = rows % self.trained.num_classes if self.trained.num_classes else None
        return to_uint8(self.trained.sample(len(rows), labels, z=z, batch_size=self.batch_size, truncation=self.truncation))
