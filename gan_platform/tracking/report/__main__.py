"""`python -m gan_platform.report DIR`: rebuild a run's report.html, or, for a folder of runs (a
sweep), write its comparison page (and the report of any run that has none)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

from gan_platform.errors import UserError, report_and_exit
from gan_platform.tracking.report.run_page import REPORT_NAME, is_run_dir, write_run_report
from gan_platform.tracking.report.sweep_page import find_runs, write_comparison


def build(directory: Path, metric: Optional[str] = None, mode: Optional[str] = None) -> Path:
    """The page for `directory`: a run's dashboard, or a sweep's comparison page."""
    if not directory.is_dir():
        raise UserError(f"No folder at '{directory}': pass a run dir or a sweep dir.")
    if is_run_dir(directory):
        return write_run_report(directory)
    runs = find_runs(directory)
    for run in tqdm([r for r in runs if not (r / REPORT_NAME).is_file()], desc="run reports", disable=len(runs) < 4):
        write_run_report(run)
    return write_comparison(directory, metric, mode)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_platform.report", description=__doc__)
    parser.add_argument("directory", type=Path, help="a run dir, or a sweep dir holding one run dir per trial")
    parser.add_argument("--metric", default=None, help="sweep pages: the metric to rank by (default: the sweep's, else eval/fid, collapse/modes, ...)")
    parser.add_argument("--mode", choices=("min", "max"), default=None, help="sweep pages: whether lower or higher is better")
    args = parser.parse_args(argv)
    try:
        path = build(args.directory, args.metric, args.mode)
    except UserError as e:
        report_and_exit(e)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
