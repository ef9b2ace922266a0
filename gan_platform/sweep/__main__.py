"""`python -m gan_platform.sweep FILE --count N [--parallel K] [--dir DIR] [key=value ...]`: run a sweep
YAML with no server; the key=value words are added to every trial (`gan-sweep sweeps/losses.yaml
--count 2 trainer.steps=300`: a shorter sweep without editing the file)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Optional

from gan_platform.errors import UserError, report_and_exit


def default_dir(config: dict, path: Path) -> Path:
    """outputs/sweeps/<the YAML's name, else its file name>."""
    name = re.sub(r"[^\w.-]+", "_", str(config.get("name") or path.stem)).strip("_") or "sweep"
    return Path("outputs") / "sweeps" / name


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gan_platform.sweep", description=(
        "Run a W&B sweep YAML locally: W&B's sweep engine proposes each trial, which runs as "
        "`python -m gan_platform ...` with its own run dir under the sweep dir. Run it again to continue."))
    parser.add_argument("file", type=Path, help="the sweep YAML, e.g. sweeps/losses.yaml")
    parser.add_argument("--count", type=int, default=None,
                        help="run trials until the sweep has N (required for random and bayes; grid: the whole grid)")
    parser.add_argument("--parallel", type=int, default=1, help="trials to run at once (default 1)")
    parser.add_argument("--dir", type=Path, default=None, help="the sweep dir (default outputs/sweeps/NAME)")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between looks at running trials")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="overrides added to every trial's command, e.g. trainer.steps=300")
    return parser.parse_intermixed_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.count is not None and args.count < 1:
            raise UserError(f"--count must be at least 1, got {args.count}.")
        if args.parallel < 1:
            raise UserError(f"--parallel must be at least 1, got {args.parallel}.")
        from gan_platform.sweep.runner import SweepRunner
        from gan_platform.sweep.spec import add_overrides, check_parameters_compose, load_sweep

        config = add_overrides(load_sweep(args.file, check_compose=False), args.overrides, args.file)
        runner = SweepRunner(config, args.dir or default_dir(config, args.file), str(args.file), count=args.count,
                             parallel=args.parallel, poll_s=args.poll)
        check_parameters_compose(args.file, config)  # last: the slowest check
        return runner.run()
    except UserError as e:
        report_and_exit(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
