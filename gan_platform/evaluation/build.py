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

from typing import Any, Optional

from omegaconf import DictConfig, open_dict

from gan_platform.errors import ConfigError
from gan_platform.runs.metrics import PIXEL_QUALITY, best_mode
from gan_platform.evaluation.resize import check_resize
from gan_platform.evaluation.features import (build_extractor, extractor_choices, fd_metric_name, fid_applies,
                                              fid_missing_reason, resolve_extractor_name)
from gan_platform.evaluation.options import BeyondFID



def default_num_samples(dataset: Any) -> int:
    if dataset.kind == "points":
        return 2500
    return 10000 if dataset.name == "stacked_digits" else 2000


def default_best_metric(dataset: Any, extractor_name: str = "") -> str:
    if hasattr(dataset, "means") or dataset.name == "stacked_digits":
        return "collapse/modes"
    return f"eval/{fd_metric_name(extractor_name)}"


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


def build_gan_evaluator(cfg: DictConfig, dataset: Any, task: Any, accelerator: Any):
    """The evaluator for a GAN task; fills in `auto` best_metric/best_mode in `cfg.eval` (the
    trainer and summary.json see the resolved values)."""
    from gan_platform.evaluation.gan_evaluator import GANEvaluator

    ev = cfg.eval
    check_eval_config(cfg)
    extractor_name = resolve_extractor_name(str(ev.get("features", "auto")), dataset, ev.get("inception_weights"), ev)
    fits = fid_applies(extractor_name, dataset, ev)
    resolve_best_metric(ev, default_best_metric(dataset, extractor_name) if fits else pixel_best_metric(dataset, extractor_name))
    extractor = build_extractor(extractor_name, dataset.sample_shape, ev)
    num_samples = ev.get("num_samples", "auto")
    num_real = ev.get("num_real", "auto")
    return GANEvaluator(
        accelerator=accelerator, dataset=dataset, extractor=extractor, num_classes=int(getattr(task, "num_classes", 0) or 0),
        num_samples=default_num_samples(dataset) if num_samples in ("auto", None) else int(num_samples),
        num_real=default_num_real(dataset, extractor_name, ev.get("num_real_cap", 10000)) if num_real in ("auto", None)
        else int(num_real), num_real_auto=num_real in ("auto", None),
        kid_subsets=int(ev.get("kid_subsets", 20)), kid_subset_size=int(ev.get("kid_subset_size", 1000)),
        prdc_k=int(ev.get("prdc_k", 5)), mode_threshold=float(ev.get("mode_threshold", 0.2)),
        batch_size=int(ev.get("batch_size", 500)), per_class_fid=bool(ev.get("per_class_fid", True)),
        fid_applies=fits, fid_note=None if fits else fid_missing_reason(dataset), is_splits=int(ev.get("is_splits") or 10),
        cache_real=bool(ev.get("cache_real", True)), options=BeyondFID.from_config(ev),
    )
