"""How big the dashboards get: a run page, and a sweep page of 100 runs.

    python benchmarks/report_size.py [STEPS] [RUNS]

Trains the default config (ring8 GAN) for STEPS (600) steps with a sample grid and an evaluation
every 50 steps, then makes a sweep dir of RUNS (100) runs from that run's files (metrics.jsonl,
summary.json and the sample grids, the numbers scaled per run, two swept parameters) and writes its
comparison page. Prints each page's size and the time to write the sweep page as a multiple of
one run page's (both measured here).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_module  # noqa: E402

from gan_platform.run import run  # noqa: E402
from gan_platform.runs.rundir import RunDir, read_metrics  # noqa: E402
from gan_platform.tracking.report import write_comparison, write_run_report  # noqa: E402


def scaled(value, factor):
    return value * factor if isinstance(value, float) else value


def main(steps: int = 600, runs: int = 100) -> None:
    overrides = ["tracker=none", "report=false", "trainer.progress=false", f"trainer.steps={steps}",
                 "trainer.sample_every=50", "eval.every=50", "trainer.log_every=10"]
    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source"
        run(cfg, source)
        t0 = time.perf_counter()
        run_page = write_run_report(source)
        run_s = time.perf_counter() - t0
        sweep = Path(tmp) / "sweep"
        for i in range(runs):
            dst = sweep / f"trial-{i:03d}"
            shutil.copytree(source, dst, ignore=shutil.ignore_patterns("checkpoints", "*.pt", "report.html"))
            factor = 1.0 + i / runs
            records = [{k: scaled(v, factor) for k, v in r.items()} for r in read_metrics(source / "metrics.jsonl")]
            (dst / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
            summary = RunDir(source).read_summary()
            summary["final"] = {k: scaled(v, factor) for k, v in summary["final"].items()}
            RunDir(dst).write_summary(summary)
            (dst / ".hydra").mkdir(exist_ok=True)
            (dst / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={1e-4 * (i + 1):g}\n- loss={['hinge', 'least_squares'][i % 2]}\n")
        t0 = time.perf_counter()
        sweep_page = write_comparison(sweep)
        sweep_s = time.perf_counter() - t0
        grids = len(list((source / "samples").glob("*.png")))
        print(f"run page: {run_page.stat().st_size / 1e6:.3f} MB ({grids} sample grids linked); "
              f"sweep page of {runs} runs: {sweep_page.stat().st_size / 1e6:.3f} MB; "
              f"writing the sweep page took {sweep_s / run_s:.1f}x one run page")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
