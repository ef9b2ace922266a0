"""Which metrics an evaluation after training measures (`gan_platform.evaluate`), decided before any
work: the groups asked for (`--metrics`), those that cannot apply refused in one sentence, and, when
none of them applies at all, one sentence instead of an empty table (issue 27's "empty table, exit 0").

    fid            the Fréchet distance on the chosen features     features that fit the data
    fd_inf         FD at infinity                                   the same
    kid            kernel distance                                  the same, and the real samples (no --ref)
    is             Inception Score                                  Inception features on images
    prdc           precision, recall, density, coverage             the real samples (pixels where nothing fits)
    collapse       mode counts                                      mixtures, digit features
    class_accuracy G(z, c) shows c                                  conditional digit runs
    memorization   AuthPct, nn_ratio, C_T, nearest neighbours       stored training images, the real samples
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from gan_platform.data.base import evaluation_of
from gan_platform.errors import UserError
from gan_platform.evaluation.gan_evaluator import stores_training_set

METRICS = ("fid", "fd_inf", "kid", "is", "prdc", "collapse", "class_accuracy", "memorization")


def parse_metrics(text: Optional[str]) -> Optional[set[str]]:
    if not text:
        return None
    chosen = {m.strip() for m in text.split(",") if m.strip()}
    unknown = sorted(chosen - set(METRICS))
    if unknown or not chosen:
        raise UserError(f"--metrics takes a comma-separated list of {', '.join(METRICS)}, got '{text}'.")
    return chosen


def refuse_pixel_reference(sample_shape: Any) -> None:
    """--save-ref on features that do not fit the images (raw pixels): one sentence with the file's size."""
    d = int(torch.Size(sample_shape).numel())
    raise UserError(f"--save-ref would write statistics of the raw pixels ({d} features, a {d * d * 8 / 1e6:.0f} MB "
                    "covariance) on which no FID means anything, so nothing was written: pass --features inception with "
                    "--inception-weights PATH (or another extractor that fits the images).")


def check_flags(args: Any) -> None:
    if (args.num_samples is not None and args.num_samples < 2) or args.seeds < 1:
        raise UserError(f"--num-samples must be at least 2 and --seeds at least 1, got {args.num_samples} and {args.seeds}.")
    if args.ref and args.save_ref:
        raise UserError("--save-ref writes the real data's statistics, and --ref replaces the real data: pass one of them.")
    if args.fake is not None:
        given = [flag for flag, on in (("--seeds", args.seeds != 1), ("--truncation", args.truncation is not None),
                                       ("--raw", args.raw), ("--checkpoint best", args.checkpoint != "last")) if on]
        if given:
            raise UserError(f"--fake scores images that are already made, so {given[0]} has nothing to act on: drop it.")
    if args.neighbours < 0:
        raise UserError(f"--neighbours must be 0 (no picture) or more, got {args.neighbours}.")


def check_metrics(metrics: Optional[set[str]], s: Any) -> None:
    """One sentence for a metric asked for that cannot be measured here."""
    if not metrics:
        return
    if "is" in metrics and s.dataset.kind == "points":
        raise UserError("The Inception Score is a measure of images, and this run generates 2-D points: drop 'is' from --metrics.")
    if "is" in metrics and s.extractor_name != "inception":
        raise UserError(f"The Inception Score needs Inception features, and this evaluation uses '{s.extractor_name}': "
                        "pass --features inception (with --inception-weights PATH) or drop 'is' from --metrics.")
    if s.fits is False and metrics & {"fid", "fd_inf", "kid", "is"}:
        raise UserError("These features do not fit the run's images, so no FID, KID or Inception Score means anything: "
                        "pass --features inception with --inception-weights PATH, or drop them from --metrics.")
    if s.reference is not None and metrics & {"kid", "prdc", "memorization"}:
        raise UserError("KID, precision/recall and the memorisation checks need the real samples, which a reference "
                        "statistics file does not hold: drop --ref or drop kid, prdc and memorization from --metrics.")
    if "memorization" in metrics and not stores_training_set(s.dataset):
        raise UserError(f"The memorisation checks compare samples with stored training images, and '{s.dataset.name}' draws "
                        "its training samples afresh: drop memorization from --metrics.")


def applicable_metrics(metrics: Optional[set[str]], s: Any) -> set[str]:
    """The metric groups to measure: those asked for (or all) that apply here; one sentence when none does."""
    name, no_ref = s.extractor_name, s.reference is None
    applies = {"fid": s.fits, "fd_inf": s.fits, "kid": s.fits and no_ref, "is": s.fits and name == "inception",
               "prdc": no_ref and (s.fits or name == "identity"),
               "collapse": evaluation_of(s.dataset).collapse == "mixture" or (name == "digits" and s.fits),
               "class_accuracy": name == "digits" and s.fits and s.num_classes > 0,
               "memorization": no_ref and stores_training_set(s.dataset)}
    chosen = {m for m, ok in applies.items() if ok and (metrics is None or m in metrics)}
    if not chosen:
        why = [] if s.fits else [f"the images are measured on '{name}' features, on which no FID, KID or Inception Score "
                                 "means anything (for Inception features put its weights file in place: "
                                 "--inception-weights PATH)"]
        why += ["--ref holds statistics only, not the real samples that KID, precision/recall and the memorisation "
                "checks need"] if not no_ref else []
        asked = f"of {', '.join(sorted(metrics))} " if metrics else ""
        raise UserError(f"No metric {asked}can be measured here, so nothing was written: "
                        f"{', and '.join(why) or 'none applies to this data'}.")
    return chosen
