"""What the dashboard costs: one report.html refresh against the run it describes.

    python benchmarks/report_cost.py [STEPS]

Trains the default config (ring8 GAN, default cadences) for STEPS (2000) steps without the
dashboard, then rebuilds its report.html a few times and prints the cost of one refresh and of all
the refreshes the run makes (one per evaluation and one at the end) as a fraction of the run's own
time. `ReportWriter` also caps itself: it skips a refresh once it has spent 5% of the run so far.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hydra import compose, initialize_config_module  # noqa: E402

from gan_platform.tracking.report import write_run_report  # noqa: E402
from gan_platform.run import run  # noqa: E402


def main(steps: int = 2000) -> None:
    overrides = ["tracker=none", "report=false", "trainer.progress=false", f"trainer.steps={steps}"]
    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    every = int(cfg.eval.every) or steps
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run(cfg, tmp)
        run_s = time.perf_counter() - t0
        costs = []
        for _ in range(3):
            t0 = time.perf_counter()
            write_run_report(Path(tmp))
            costs.append(time.perf_counter() - t0)
    refresh = statistics.median(costs)
    refreshes = steps // every + 1
    print(f"run: {steps} steps in {run_s:.2f} s; one report refresh: {refresh:.3f} s "
          f"({refresh / run_s:.1%} of the run); {refreshes} refreshes: {refreshes * refresh / run_s:.1%} of the run")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
