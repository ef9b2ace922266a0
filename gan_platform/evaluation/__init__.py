"""Evaluation: feature extractors, FID/KID (torchmetrics), precision/recall, collapse metrics."""

from gan_platform.evaluation.evaluator import Evaluator

__all__ = ["Evaluator"]
