"""Evaluate a trained generator after the fact, with a protocol others can reproduce.

    python -m gan_platform.evaluate RUN_DIR_OR_CHECKPOINT --num-samples 50000 --seeds 3
    python -m gan_platform.evaluate RUN_DIR --metrics fid,is --ref cifar10_train.npz --truncation 0.7
    python -m gan_platform.evaluate RUN_DIR --save-ref real.npz          # the real statistics, for others
    accelerate launch --multi_gpu --num_processes 4 -m gan_platform.evaluate RUN_DIR ...

G is rebuilt from the checkpoint alone (runs/loading.py), its EMA when the run has one (`--raw`: the
raw generator). `--seeds K` draws K independent sample sets (noise seeds 0..K-1 after `--seed`);
every number is reported as the mean and standard deviation over the K sets. Sample i of a set has
a latent fixed by the set's seed and i (class i mod C for conditional runs), so several processes
split the sampling and the feature extraction and get the numbers of one process. The real data and
the features are the run's (`eval.*` of its config, or `--features`, `--resize`, ...); `--ref` puts
a reference statistics file (evaluation/reference.py) in the real data's place for the FID.

Writes `eval_<name>.json` (numbers and the full protocol) into the run dir and prints a table.
Metrics (`--metrics`, default all that apply): fid, kid, is, prdc, collapse, class_accuracy.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional, Sequence

import torch
from omegaconf import OmegaConf

from gan_platform.errors import UserError, instantiate, report_and_exit

METRICS = ("fid", "kid", "is", "prdc", "collapse", "class_accuracy")


def parse_metrics(text: Optional[str]) -> Optional[set[str]]:
    if not text:
        return None
    chosen = {m.strip() for m in text.split(",") if m.strip()}
    unknown = sorted(chosen - set(METRICS))
    if unknown or not chosen:
        raise UserError(f"--metrics takes a comma-separated list of {', '.join(METRICS)}, got '{text}'.")
    return chosen


def eval_config(cfg: Any, args: argparse.Namespace):
    """The run's `eval` node (or the defaults, for a checkpoint outside a run dir) with the flags on top."""
    if cfg is not None and cfg.get("eval") is not None:
        ev = OmegaConf.create(OmegaConf.to_container(cfg.eval, resolve=True))
    else:
        from importlib.resources import files

        ev = OmegaConf.create((files("gan_platform.conf") / "eval" / "default.yaml").read_text(encoding="utf-8"))
    for key in ("features", "resize", "inception_weights", "num_real", "batch_size", "is_splits"):
        value = getattr(args, key)
        if value is not None:
            ev[key] = value
    return ev


def check_metrics(metrics: Optional[set[str]], kind: str, extractor_name: str, fits: bool, reference: Any) -> None:
    """One sentence for a metric that cannot be measured here."""
    if not metrics:
        return
    if "is" in metrics and kind == "points":
        raise UserError("The Inception Score is a measure of images, and this run generates 2-D points: drop 'is' from --metrics.")
    if "is" in metrics and extractor_name != "inception":
        raise UserError(f"The Inception Score needs Inception features, and this evaluation uses '{extractor_name}': "
                        "pass --features inception (with --inception-weights PATH) or drop 'is' from --metrics.")
    if fits is False and metrics & {"fid", "kid", "is"}:
        raise UserError("These features do not fit the run's images, so no FID, KID or Inception Score means anything: "
                        "pass --features inception with --inception-weights PATH, or drop them from --metrics.")
    if reference is not None and metrics & {"kid", "prdc"}:
        raise UserError("KID and precision/recall need the real features, which a reference statistics file does not hold: "
                        "drop --ref or drop kid and prdc from --metrics.")


def _gather(acc: Any, part: torch.Tensor, share: int, total: int) -> torch.Tensor:
    """Every process's rows, in rank order, trimmed to `total` (shorter shares are padded at the end)."""
    if acc.num_processes == 1:
        return part[:total]
    if len(part) < share:
        pad = part[-1:].expand(share - len(part), *part.shape[1:]) if len(part) else \
            torch.zeros((share, *part.shape[1:]), dtype=part.dtype, device=part.device)
        part = torch.cat([part, pad[: share - len(part)]])
    return acc.gather(part.contiguous())[:total]


def sample_set(trained: Any, evaluator: Any, acc: Any, n: int, seed: int, truncation: Optional[float],
               batch_size: int) -> tuple[dict[str, torch.Tensor], Optional[torch.Tensor]]:
    """One sample set of `n`, split across the processes: latents from `seed` (the same for any
    number of processes), each process generating and extracting its slice, the parts gathered."""
    z = trained.noise(n, seed, truncation)
    labels = torch.arange(n) % trained.num_classes if trained.num_classes else None
    share = math.ceil(n / acc.num_processes)
    lo, hi = min(n, acc.process_index * share), min(n, (acc.process_index + 1) * share)
    y = labels[lo:hi] if labels is not None else None
    fake = trained.sample(hi - lo, y, z=z[lo:hi], batch_size=batch_size, truncation=truncation).to(acc.device)
    if not torch.isfinite(fake).all():
        raise UserError(f"The generator produced non-finite samples (seed {seed}): evaluate an earlier checkpoint.")
    parts = evaluator.extract(fake) if hi > lo else None
    if parts is None:  # no samples for this rank: the parts' shapes from one sample, then emptied
        parts = {k: v[:0] for k, v in evaluator.extract(trained.sample(1, labels[:1] if labels is not None else None,
                                                                        z=z[:1], truncation=truncation).to(acc.device)).items()}
    parts = {k: _gather(acc, v, share, n) for k, v in parts.items()}
    return parts, labels.to(acc.device) if labels is not None else None


def summarise(values: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """{metric: {mean, std (over sets; 0 for one set), values}}."""
    out = {}
    for key in sorted({k for v in values for k in v}):
        xs = [v[key] for v in values if key in v]
        mean = sum(xs) / len(xs)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
        out[key] = {"mean": mean, "std": std, "values": xs}
    return out


def table(summary: dict[str, dict[str, Any]], sets: int) -> str:
    width = max([len(k) for k in summary] + [6])
    lines = [f"{'metric':<{width}}  {'mean':>12}  {'std':>10}  (over {sets} sample set{'s' if sets > 1 else ''})"]
    lines += [f"{k:<{width}}  {v['mean']:>12.6g}  {v['std']:>10.4g}" for k, v in summary.items()]
    return "\n".join(lines)


def evaluate(args: argparse.Namespace) -> tuple[dict[str, Any], Optional[Path]]:
    """The evaluation the flags describe; (the JSON written, its path on the main process)."""
    from accelerate import Accelerator

    from gan_platform.evaluation.build import check_eval_config, default_num_real
    from gan_platform.evaluation.features import build_extractor, fid_applies, fid_missing_reason, resolve_extractor_name
    from gan_platform.evaluation.gan_evaluator import GANEvaluator
    from gan_platform.evaluation.reference import ReferenceStats, check_compatible, load_reference, save_reference
    from gan_platform.runs.generator import load_generator

    metrics = parse_metrics(args.metrics)
    if args.num_samples < 2 or args.seeds < 1:
        raise UserError(f"--num-samples must be at least 2 and --seeds at least 1, got {args.num_samples} and {args.seeds}.")
    if args.ref and args.save_ref:
        raise UserError("--save-ref writes the real data's statistics, and --ref replaces the real data: pass one of them.")
    acc = Accelerator()
    trained = load_generator(args.path, args.checkpoint, raw=args.raw)
    trained.generator.to(acc.device)
    ev = eval_config(trained.cfg, args)
    check_eval_config(OmegaConf.create({"eval": ev}))
    reference = load_reference(args.ref) if args.ref else None
    if trained.cfg is not None:
        dataset = instantiate(trained.cfg.dataset)
    elif reference is not None:  # a checkpoint alone: the reference says what data and features it was made of
        dataset = SimpleNamespace(name=str(reference.protocol.get("dataset", "(unknown)")),
                                  kind="points" if len(trained.sample_shape) == 1 else "images")
        if args.features is None and reference.protocol.get("extractor"):
            ev.features = str(reference.protocol["extractor"])
    else:
        raise UserError(f"'{trained.checkpoint}' has no run dir around it, so there is no real data to compare with: "
                        "pass --ref FILE.npz (reference statistics) or the run dir.")
    name = resolve_extractor_name(str(ev.get("features", "auto")), dataset, ev.get("inception_weights"), ev)
    fits = fid_applies(name, dataset, ev)
    check_metrics(metrics, dataset.kind, name, fits, reference)
    extractor = build_extractor(name, trained.sample_shape, ev)
    if reference is not None:
        check_compatible(reference, extractor.protocol(), args.ref)
    num_real = ev.get("num_real", "auto")
    batch_size = int(ev.get("batch_size") or 500)
    evaluator = GANEvaluator(
        accelerator=acc, dataset=dataset, extractor=extractor, num_classes=trained.num_classes,
        num_samples=args.num_samples, num_real=default_num_real(dataset, name, ev.get("num_real_cap", 10000))
        if num_real in ("auto", None) else int(num_real),
        num_real_auto=num_real in ("auto", None), kid_subsets=int(ev.get("kid_subsets", 20)),
        kid_subset_size=int(ev.get("kid_subset_size", 1000)), prdc_k=int(ev.get("prdc_k", 5)),
        mode_threshold=float(ev.get("mode_threshold", 0.2)), batch_size=batch_size,
        per_class_fid=bool(ev.get("per_class_fid", True)), fid_applies=fits,
        fid_note=None if fits else fid_missing_reason(dataset), is_splits=int(ev.get("is_splits") or 10),
        reference=reference, cache_real=bool(ev.get("cache_real", True)))
    out_dir = trained.run_dir or trained.checkpoint.parent
    if args.save_ref and acc.is_main_process:
        protocol = {**evaluator.protocol(), "num_samples": evaluator.num_real, "dataset": dataset.name}
        for key in ("num_fake", "num_fake_used", "evaluations", "eval_seconds", "num_processes", "prdc_k",
                    "kid_subsets", "kid_subset_size", "is_splits", "real_statistics"):
            protocol.pop(key, None)
        save_reference(args.save_ref, ReferenceStats.of(evaluator.real_features, protocol))
    results = []
    for k in range(args.seeds):
        parts, labels = sample_set(trained, evaluator, acc, args.num_samples, args.seed + k, args.truncation, batch_size)
        results.append(evaluator.measure(parts, labels, metrics))
    summary = summarise(results)
    protocol = {**evaluator.protocol(), "generator": trained.network, "checkpoint": str(trained.checkpoint),
                "step": trained.step, "truncation": args.truncation,
                "truncation_space": trained.truncation_space if args.truncation is not None else None,
                "num_samples": args.num_samples,
                "sample_sets": args.seeds, "seeds": [args.seed + k for k in range(args.seeds)],
                "latents": "z_i of set k from torch.Generator().manual_seed(seed_k), sample i of class i mod C",
                "reference": str(args.ref) if args.ref else None,
                "reference_protocol": reference.protocol if reference is not None else None,
                "metrics": sorted(metrics) if metrics else "all that apply", "std": "sample standard deviation over the sets"}
    for key in ("num_fake", "evaluations", "eval_seconds"):
        protocol.pop(key, None)
    report = {"metrics": summary, "protocol": protocol}
    path = None
    if acc.is_main_process:
        from gan_platform.runs.rundir import atomic_write_json

        label = args.name or f"{args.checkpoint}_{trained.network}_{args.num_samples}"
        path = out_dir / f"eval_{label}.json"
        atomic_write_json(path, report)
    acc.wait_for_everyone()
    return report, path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_platform.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("path", help="a run dir (outputs/NAME/TIME) or a checkpoint folder")
    parser.add_argument("--num-samples", type=int, default=10000, help="generated samples per set (papers: 50000)")
    parser.add_argument("--seeds", type=int, default=1, help="independent sample sets, reported as mean and std")
    parser.add_argument("--seed", type=int, default=0, help="the first set's noise seed")
    parser.add_argument("--metrics", default=None, help=f"comma-separated: {', '.join(METRICS)} (default: all that apply)")
    parser.add_argument("--ref", default=None, help="reference statistics .npz (ours, pytorch-fid's or clean-fid's) for the FID")
    parser.add_argument("--save-ref", default=None, help="also write the real data's statistics to this .npz")
    parser.add_argument("--checkpoint", default="last", choices=("last", "best"), help="which checkpoint of a run dir")
    parser.add_argument("--raw", action="store_true", help="the raw generator even where the run has an EMA one")
    parser.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="truncation trick: psi toward w_avg for a generator with W (StyleGAN2), else z's threshold")
    parser.add_argument("--features", default=None, help="feature extractor (default: the run's eval.features)")
    parser.add_argument("--resize", default=None, help="torchmetrics or clean (default: the run's eval.resize)")
    parser.add_argument("--inception-weights", dest="inception_weights", default=None, help="path of the Inception file")
    parser.add_argument("--num-real", dest="num_real", type=int, default=None, help="real samples for the statistics")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    parser.add_argument("--is-splits", dest="is_splits", type=int, default=None, help="Inception Score splits (10)")
    parser.add_argument("--name", default=None, help="the file is eval_<name>.json (default: CHECKPOINT_NETWORK_N)")
    args = parser.parse_args(argv)
    try:
        report, path = evaluate(args)
    except UserError as e:
        report_and_exit(e)
    if path is not None:
        print(table(report["metrics"], args.seeds))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
