"""Evaluate a trained generator, or any set of images, after the fact, with a protocol others can reproduce.

    python -m gan_platform.evaluate RUN_DIR_OR_CHECKPOINT --num-samples 50000 --seeds 3
    python -m gan_platform.evaluate RUN_DIR --metrics fid,is --ref cifar10_train.npz --truncation 0.7
    python -m gan_platform.evaluate RUN_DIR --save-ref real.npz          # the real statistics, for others
    python -m gan_platform.evaluate RUN_DIR --fake samples.zip           # any model's images against the run's data
    python -m gan_platform.evaluate --fake DIR dataset=digits            # ... against a dataset config (Hydra)
    python -m gan_platform.evaluate --fake FILE.npz --ref ref.npz        # ... against reference statistics
    python -m gan_platform.evaluate RUN_DIR eval.features=dinov2 eval.dinov2_weights=PATH   # FD-DINOv2
    accelerate launch --multi_gpu --num_processes 4 -m gan_platform.evaluate RUN_DIR ...

G is rebuilt from the checkpoint alone (runs/loading.py), its EMA when the run has one (`--raw`: the
raw generator). `--seeds K` draws K independent sample sets (noise seeds `--seed` .. `--seed`+K-1);
every number is reported as the mean and standard deviation over the K sets. Sample i of a set has
a latent fixed by the set's seed and i (class i mod C for conditional runs), so several processes
split the sampling and the feature extraction and get the numbers of one process; `gan_platform.sample
--export` writes the same set as images. `--fake` scores images instead (a folder, zip or npz:
evaluation/image_sets.py). The real data and the features are the run's (`eval.*` of its config,
`eval.KEY=VALUE` arguments and the flags on top), or a Hydra config's (`dataset=NAME ...`); `--ref`
puts a reference statistics file (evaluation/reference.py) in the real data's place for the FID.

Metrics (`--metrics`, default all that apply): fid (the Fréchet distance on the chosen features),
fd_inf, kid, is, prdc, collapse, class_accuracy, memorization. When none applies, one sentence and
exit code 2. Writes `eval_<name>.json` and, for the memorisation checks,
`eval_<name>_nearest_neighbours.png` (evaluation/records.py: an evaluation never replaces another),
refreshes the run's report.html, and prints a table; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from gan_platform.errors import UserError, report_and_exit
from gan_platform.evaluation.applicable import METRICS, applicable_metrics, check_metrics, parse_metrics
from gan_platform.evaluation.session import Session

NEIGHBOUR_ROWS = 8  # generated samples in nearest_neighbours.png


def progress(acc: Any, message: str) -> None:
    """One line of progress on stderr (the main process only)."""
    if acc.is_main_process:
        print(f"evaluate: {message}", file=sys.stderr, flush=True)


def _gather(acc: Any, part: torch.Tensor, share: int, total: int) -> torch.Tensor:
    """Every process's rows, in rank order, trimmed to `total` (shorter shares are padded at the end)."""
    if acc.num_processes == 1:
        return part[:total]
    if len(part) < share:
        pad = part[-1:].expand(share - len(part), *part.shape[1:]) if len(part) else \
            torch.zeros((share, *part.shape[1:]), dtype=part.dtype, device=part.device)
        part = torch.cat([part, pad[: share - len(part)]])
    return acc.gather(part.contiguous())[:total]


def extract_split(evaluator: Any, acc: Any, n: int, make: Any) -> dict[str, torch.Tensor]:
    """`make(lo, hi)` gives samples lo..hi-1; each process extracts its slice, the parts are gathered."""
    share = math.ceil(n / acc.num_processes)
    lo, hi = min(n, acc.process_index * share), min(n, (acc.process_index + 1) * share)
    fake = make(lo, hi) if hi > lo else make(0, 1)  # no samples for this rank: the parts' shapes from one, then emptied
    if not torch.isfinite(fake).all():
        raise UserError("The samples hold non-finite values: evaluate an earlier checkpoint.")
    parts = evaluator.extract(fake.to(acc.device))
    if hi <= lo:
        parts = {k: v[:0] for k, v in parts.items()}
    return {k: _gather(acc, v, share, n) for k, v in parts.items()}


def sample_set(trained: Any, evaluator: Any, acc: Any, n: int, seed: int, truncation: Optional[float],
               batch_size: int) -> tuple[dict[str, torch.Tensor], Optional[torch.Tensor]]:
    """One sample set of `n`: latents from `seed` (the same for any number of processes), each
    process generating and extracting its slice, the parts gathered."""
    z = trained.noise(n, seed, truncation)
    labels = torch.arange(n) % trained.num_classes if trained.num_classes else None
    make = lambda lo, hi: trained.sample(hi - lo, labels[lo:hi] if labels is not None else None,  # noqa: E731
                                         z=z[lo:hi], batch_size=batch_size, truncation=truncation)
    return extract_split(evaluator, acc, n, make), labels.to(acc.device) if labels is not None else None


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


def measure_sets(session: Session, args: argparse.Namespace, chosen: set[str]) -> tuple[list[dict], Optional[dict]]:
    """Every sample set's metrics (or the image set's), and the nearest neighbours of the first."""
    ev, acc, results, neighbours = session.evaluator, session.acc, [], None
    sets = 1 if session.fake is not None else args.seeds
    for k in range(sets):
        start = time.perf_counter()
        if session.fake is not None:
            images = session.fake.decoded()
            parts, labels = extract_split(ev, acc, len(images), lambda lo, hi: images[lo:hi]), session.fake_labels()
        else:
            parts, labels = sample_set(session.trained, ev, acc, args.num_samples, args.seed + k, args.truncation, session.batch_size)
        results.append(ev.measure(parts, labels, chosen))
        if k == 0 and ev.copy_check is not None and args.neighbours > 0:
            neighbours = session.neighbours(parts["features"], args.neighbours, args.seed, args.truncation, args.num_samples)
        progress(acc, f"set {k + 1} of {sets}: {ev.num_fake_used} samples measured in {time.perf_counter() - start:.1f} s")
        if ev.fd_inf_values:
            session.fd_inf_values.append(ev.fd_inf_values)
    return results, neighbours


def split_inputs(inputs: list[str]) -> tuple[Optional[str], list[str]]:
    """(the run dir or checkpoint, the KEY=VALUE overrides) of the positional arguments."""
    paths = [i for i in inputs if "=" not in i or Path(i).exists()]
    if len(paths) > 1:
        raise UserError(f"Evaluate one run at a time, got {len(paths)}: {', '.join(paths)}.")
    return (paths[0] if paths else None), [i for i in inputs if i not in paths]


def compose(overrides: list[str]) -> Any:
    """The config `python -m gan_platform OVERRIDES` would compose: its data and its `eval` node are used."""
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.errors import HydraException

    try:
        with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
            cfg = hydra_compose("config", overrides=overrides)
    except HydraException as e:
        raise UserError(f"The overrides {' '.join(overrides)} do not compose ({str(e).splitlines()[0].rstrip('.')}): "
                        "name a dataset as dataset=NAME (conf/dataset/) and settings as eval.KEY=VALUE.") from None
    return cfg


def refresh_report(session: Session) -> None:
    """The run's report.html again, now listing this evaluation (a run dir with a dashboard only)."""
    run_dir = session.trained.run_dir if session.trained is not None else None
    if run_dir is not None and (run_dir / "report.html").is_file() and session.out_dir.resolve() == run_dir.resolve():
        from gan_platform.tracking.report.run_page import write_run_report

        write_run_report(run_dir)


def evaluate(args: argparse.Namespace) -> tuple[dict[str, Any], Optional[Path]]:
    """The evaluation the flags describe; (the JSON written, its path on the main process)."""
    metrics = parse_metrics(args.metrics)
    path, overrides = split_inputs(args.inputs)
    composed = compose(overrides) if path is None and overrides else None
    session = Session.open(args, path, overrides, composed)  # generator or image set, config, name: all checked
    progress(session.acc, f"{session.describe()}; real statistics of '{session.dataset.name}'")
    check_metrics(metrics, session)
    chosen = applicable_metrics(metrics, session)   # one sentence when none applies
    start = time.perf_counter()
    session.build_evaluator(dataclasses.replace(session.options, fd_inf="fd_inf" in chosen,
                                                memorization="memorization" in chosen))
    progress(session.acc, f"{session.evaluator.num_real or 'reference'} real samples ready in {time.perf_counter() - start:.1f} s")
    if args.save_ref:
        session.save_reference(args.save_ref)
    results, neighbours = measure_sets(session, args, chosen)
    summary = summarise(results)
    if not summary:
        raise UserError(f"None of the metrics {', '.join(sorted(chosen))} could be measured on these samples: "
                        "check --metrics against the protocol in docs/evaluation.md.")
    report = {"metrics": summary, "protocol": session.protocol(args, metrics)}
    if session.fd_inf_values:
        report["fd_inf"] = {"counts": session.evaluator.fd_inf_counts, "values": session.fd_inf_values}
    written = session.write(report, neighbours)
    if written is not None:
        refresh_report(session)
    session.acc.wait_for_everyone()
    return report, written


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan_platform.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="*", metavar="RUN_DIR | KEY=VALUE",
                   help="a run dir or checkpoint folder, and/or Hydra overrides (dataset=NAME, eval.KEY=VALUE)")
    p.add_argument("--fake", default=None, help="score these images instead of sampling G: a folder, .zip or .npz")
    p.add_argument("--num-samples", type=int, default=None, help="generated samples per set (default 10000; papers: 50000)")
    p.add_argument("--seeds", type=int, default=1, help="independent sample sets, reported as mean and std")
    p.add_argument("--seed", type=int, default=0, help="the first set's noise seed")
    p.add_argument("--metrics", default=None, help=f"comma-separated: {', '.join(METRICS)} (default: all that apply)")
    p.add_argument("--ref", default=None, help="reference statistics .npz (ours, pytorch-fid's or clean-fid's) for the FID")
    p.add_argument("--save-ref", default=None, help="also write the real data's statistics to this .npz")
    p.add_argument("--heldout", default=None, help="real images never trained on (folder, .zip, .npz): the C_T test")
    p.add_argument("--neighbours", type=int, default=NEIGHBOUR_ROWS, help="rows of nearest_neighbours.png (0: none)")
    p.add_argument("--checkpoint", default="last", choices=("last", "best"), help="which checkpoint of a run dir")
    p.add_argument("--raw", action="store_true", help="the raw generator even where the run has an EMA one")
    p.add_argument("--truncation", type=float, default=None, metavar="PSI",
                   help="truncation trick: psi toward w_avg for a generator with W (StyleGAN2), else z's threshold")
    p.add_argument("--features", default=None, help="feature extractor (default: the run's eval.features)")
    p.add_argument("--resize", default=None, help="torchmetrics or clean (default: the run's eval.resize)")
    p.add_argument("--inception-weights", dest="inception_weights", default=None, help="path of the Inception file")
    p.add_argument("--num-real", dest="num_real", type=int, default=None, help="real samples for the statistics")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    p.add_argument("--is-splits", dest="is_splits", type=int, default=None, help="Inception Score splits (10)")
    p.add_argument("--name", default=None, help="the file is eval_<name>.json (default: CHECKPOINT_NETWORK_N, numbered if taken)")
    p.add_argument("--out-dir", dest="out_dir", default=None, help="where eval_<name>.json goes (default: the run dir)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_intermixed_args(argv)
    try:
        report, path = evaluate(args)
    except UserError as e:
        report_and_exit(e)
    if path is not None:
        print(table(report["metrics"], len(next(iter(report["metrics"].values()))["values"])))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
