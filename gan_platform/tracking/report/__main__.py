"""`python -m gan_platform.report DIR`: rebuild a run's report.html, or, for a folder of runs (a
sweep), write its comparison page (and the report of any run that has none);
`python -m gan_platform.report RUN_A RUN_B ...` (or a quoted glob, `'outputs/wgan/*'`) writes one
comparison page of those runs."""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

from gan_platform.errors import UserError, report_and_exit
from gan_platform.tracking.report.run_page import REPORT_NAME, is_run_dir, write_run_report
from gan_platform.tracking.report.sweep_page import find_runs, write_comparison, write_runs_comparison


def expand(paths: list[str]) -> list[Path]:
    """The paths, each glob pattern (`*`, `?`, `[`) that names no file itself replaced by the run dirs it matches."""
    out: list[Path] = []
    for p in paths:
        if any(c in p for c in "*?[") and not Path(p).exists():
            matches = [Path(m) for m in sorted(glob.glob(p)) if is_run_dir(Path(m))]
            if not matches:
                raise UserError(f"No run dir matches '{p}': pass run dirs or a pattern that matches some.")
            out += matches
        else:
            out.append(Path(p))
    return out


def _reports(runs: list[Path]) -> None:
    for run in tqdm([r for r in runs if not (r / REPORT_NAME).is_file()], desc="run reports", disable=len(runs) < 4):
        write_run_report(run)


def build(directory: Path, metric: Optional[str] = None, mode: Optional[str] = None) -> Path:
    """The page for `directory`: a run's dashboard, or a sweep's comparison page."""
    if not directory.is_dir():
        raise UserError(f"No folder at '{directory}': pass a run dir or a sweep dir.")
    if is_run_dir(directory):
        return write_run_report(directory)
    _reports(find_runs(directory))
    return write_comparison(directory, metric, mode)


def build_comparison(runs: list[Path], out: Optional[Path] = None, metric: Optional[str] = None,
                     mode: Optional[str] = None) -> Path:
    """One page comparing `runs` (and the report of any run that has none)."""
    missing = [r for r in runs if not r.is_dir()]
    if missing:
        raise UserError(f"No folder at '{missing[0]}': pass run dirs to compare.")
    _reports([r for r in runs if is_run_dir(r)])
    return write_runs_comparison(runs, out, metric, mode)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_platform.report", description=__doc__)
    parser.add_argument("paths", nargs="+", metavar="DIR",
                        help="a run dir; a sweep dir holding one run dir per trial; or several run dirs (or a glob) to compare")
    parser.add_argument("--metric", default=None, help="comparison pages: the metric to rank by (default: the sweep's, else eval/fid, collapse/modes, ...)")
    parser.add_argument("--mode", choices=("min", "max"), default=None, help="comparison pages: whether lower or higher is better")
    parser.add_argument("--out", type=Path, default=None,
                        help="several runs: where to write the page (default: comparison.html in their common folder)")
    args = parser.parse_args(argv)
    try:
        paths = expand(args.paths)
        if len(paths) == 1 and args.out is None:
            path = build(paths[0], args.metric, args.mode)
        else:
            path = build_comparison(paths, args.out, args.metric, args.mode)
    except UserError as e:
        report_and_exit(e)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
