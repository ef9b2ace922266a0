"""Build the GAN evaluator from `cfg.eval` (conf/eval/default.yaml) and resolve its `auto` choices.

`auto` values, by data kind:
    features      identity (points), digits (digit images), inception (other images)
    num_samples   2,500 (points, the VEEGAN/PacGAN protocol), 2,000 (images), 10,000 (stacked digits)
    num_real      the whole dataset, except Inception features on images: at most `eval.num_real_cap`
                  (10,000, the number FID papers commonly use), a fixed seeded subset (data/base.py):
                  Inception on 60,000 MNIST or CIFAR-10 images costs minutes before every run
    best_metric   collapse/modes (mixtures, stacked digits), eval/fid (other images; eval/fd_dinov2 or
                  eval/fd_clip on those features), and where no FID is reported because the features do
                  not fit the images (features.fid_applies), the pixel-space coverage
                  (eval/pixel_coverage) the evaluator reports instead
    best_mode     from the metric: max for modes, precision, recall, coverage, accuracy; min otherwise
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from omegaconf import DictConfig, open_dict

from gan_platform.data.base import evaluation_of
from gan_platform.errors import ConfigError
from gan_platform.runs.metrics import PIXEL_QUALITY, best_mode
from gan_platform.evaluation.resize import check_resize
from gan_platform.evaluation.features import (build_extractor, extractor_choices, fd_metric_name, fid_applies,
                                              fid_missing_reason, resolve_extractor_name)
from gan_platform.evaluation.options import BeyondFID



def default_num_samples(dataset: Any) -> int:
    """`eval.num_samples=auto`: what the dataset declares (data/base.Evaluation)."""
    return evaluation_of(dataset).num_samples


def default_best_metric(dataset: Any, extractor_name: str = "") -> str:
    """`eval.best_metric=auto`: what the dataset declares (modes covered for mixtures and stacked
    digits), else the FID of the features."""
    return evaluation_of(dataset).best_metric or f"eval/{fd_metric_name(extractor_name)}"


def pixel_best_metric(dataset: Any, extractor_name: str) -> Optional[str]:
    """Where no features fit the images (photos without Inception weights), the best checkpoint follows
    the pixel-space coverage the evaluator reports instead (`runs.metrics.PIXEL_QUALITY`)."""
    return PIXEL_QUALITY[0] if dataset.kind == "images" and extractor_name == "identity" else None


def default_num_real(dataset: Any, extractor_name: str, cap: Any) -> Optional[int]:
    """`num_real: auto`: None (the whole dataset), or `cap` for images measured with Inception."""
    if extractor_name == "inception" and dataset.kind == "images" and cap is not None and int(cap) < len(dataset):
        return int(cap)
    return None


def _whole(cfg: DictConfig, key: str, value: Any, minimum: int, other: str = "auto") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"eval.{key} must be a whole number of at least {minimum} (or {other}), got {value!r}.")
    return value


def check_eval_config(cfg: DictConfig) -> None:
    """Range checks of the evaluator's own fields (run with the other config checks, before any work)."""
    ev = cfg.eval
    if not isinstance(ev.get("enabled", True), bool):
        raise ConfigError(f"eval.enabled must be true or false, got '{ev.enabled}'.")
    if not ev.get("enabled", True) and ev.get("early_stop_patience", 0):
        raise ConfigError("eval.early_stop_patience stops on evaluations, but eval.enabled=false turns them off: "
                          "set eval.early_stop_patience=0 or eval.enabled=true.")
    for key, minimum in (("num_samples", 2), ("num_real", 2), ("kid_subsets", 1), ("kid_subset_size", 2),
                         ("prdc_k", 1), ("batch_size", 1)):
        value = ev.get(key, "auto")
        if value not in ("auto", None):
            _whole(cfg, key, value, minimum)
    if ev.get("num_real_cap") is not None:
        _whole(cfg, "num_real_cap", ev.num_real_cap, 2, other="null for no cap")
    if ev.get("best_mode", "min") not in ("min", "max", "auto"):
        raise ConfigError(f"eval.best_mode must be min, max or auto, got '{ev.best_mode}'.")
    if ev.get("features", "auto") not in extractor_choices(ev):
        raise ConfigError(f"eval.features must be one of {', '.join(extractor_choices(ev))}, got '{ev.features}'.")
    for name, node in (ev.get("extractors") or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ConfigError(f"eval.extractors.{name} must be a node with a _target_ (a factory called with sample_shape and eval_cfg).")
    check_resize(ev.get("resize", "torchmetrics"))
    if ev.get("is_splits") is not None:
        _whole(cfg, "is_splits", ev.is_splits, 1, other="10")
    BeyondFID.from_config(ev)
    if not 0 <= float(ev.get("mode_threshold", 0.2)) <= 1:
        raise ConfigError(f"eval.mode_threshold is a fraction of a mode's fair share in [0, 1], got {ev.mode_threshold}.")


def resolve_best_metric(ev: DictConfig, default: Any) -> None:
    """Fill in `best_metric: auto` (with `default`, None = no best checkpoint) and `best_mode: auto`."""
    with open_dict(ev):
        if ev.get("best_metric") == "auto":
            ev.best_metric = default
        if ev.get("best_mode", "auto") == "auto":
            ev.best_mode = best_mode(ev.best_metric or "")


def eval_defaults() -> DictConfig:
    """conf/eval/default.yaml: the one place the evaluation's defaults are written."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    return OmegaConf.create((files("gan_platform.conf") / "eval" / "default.yaml").read_text(encoding="utf-8"))


def complete(ev: Any) -> DictConfig:
    """An `eval` node with every key: a run's saved node (perhaps from before a key existed) over the defaults."""
    from omegaconf import OmegaConf

    return OmegaConf.merge(eval_defaults(), OmegaConf.create(OmegaConf.to_container(ev, resolve=True)) if ev is not None else {})


def gan_evaluator(ev: DictConfig, dataset: Any, accelerator: Any, *, num_classes: int, sample_shape: Sequence[int],
                  num_samples: Optional[int] = None, reference: Any = None, reference_name: str = "the reference file",
                  extractor_name: Optional[str] = None, options: Optional[BeyondFID] = None):
    """The GAN evaluator an `eval` node describes, on `dataset`'s real data (or a reference statistics
    file): the one builder, for training (`build_gan_evaluator`) and the evaluate command
    (evaluation/session.py). `num_samples` None: `eval.num_samples` (auto: what the dataset declares);
    `options` None: the node's FD at infinity and memorisation settings."""
    from gan_platform.evaluation.gan_evaluator import GANEvaluator

    name = extractor_name or resolve_extractor_name(str(ev.features), dataset, ev.inception_weights, ev)
    fits = fid_applies(name, dataset, ev)
    extractor = build_extractor(name, tuple(sample_shape), ev)
    if reference is not None:
        from gan_platform.evaluation.reference import check_compatible

        check_compatible(reference, extractor.protocol(), reference_name)
    if num_samples is None:
        num_samples = default_num_samples(dataset) if ev.num_samples in ("auto", None) else int(ev.num_samples)
    real_auto = ev.num_real in ("auto", None)
    return GANEvaluator(
        accelerator=accelerator, dataset=dataset, extractor=extractor, num_classes=int(num_classes or 0),
        num_samples=int(num_samples), num_real=default_num_real(dataset, name, ev.num_real_cap) if real_auto else int(ev.num_real),
        num_real_auto=real_auto, kid_subsets=int(ev.kid_subsets), kid_subset_size=int(ev.kid_subset_size),
        prdc_k=int(ev.prdc_k), mode_threshold=float(ev.mode_threshold), batch_size=int(ev.batch_size),
        per_class_fid=bool(ev.per_class_fid), fid_applies=fits, fid_note=None if fits else fid_missing_reason(dataset),
        is_splits=int(ev.is_splits), reference=reference, cache_real=bool(ev.cache_real),
        options=options or BeyondFID.from_config(ev))


def build_gan_evaluator(cfg: DictConfig, dataset: Any, task: Any, accelerator: Any):
    """The evaluator of a GAN task in training (conf/task/gan.yaml's `evaluator._target_`); fills in
    `auto` best_metric/best_mode in `cfg.eval` (the trainer and summary.json see the resolved values).
    The config was checked before any work (config/checks.py runs check_eval_config)."""
    ev = cfg.eval
    name = resolve_extractor_name(str(ev.features), dataset, ev.inception_weights, ev)
    fits = fid_applies(name, dataset, ev)
    resolve_best_metric(ev, default_best_metric(dataset, name) if fits else pixel_best_metric(dataset, name))
    return gan_evaluator(ev, dataset, accelerator, num_classes=task.num_classes, sample_shape=dataset.sample_shape,
                         extractor_name=name)
