"""Hydra multirun (`python -m gan_platform -m loss=minimax,hinge seed=0,1`): checked before, judged after.

Before any job starts, `preflight_sweep` expands the sweep as Hydra's basic sweeper will (the
cartesian product of the swept values, `hydra.sweeper.params` included) and composes and checks
every job's config here, in this process, whatever the launcher (submitit runs the jobs elsewhere,
but composes them from the same config): a bad value anywhere in a sweep list is refused with its
one sentence (exit 2) before anything runs.

After the sweep, `JobOutcomes` (a Hydra callback, see conf/config.yaml) has recorded how each job
ended, from wherever it ran, as ``<sweep dir>/.job_outcomes/<num>.json``; `report_failed_jobs`
prints one line per job that did not finish (its overrides and the error of its summary.json) and
the multirun exits 1, so that a script or scheduler sees the failure. Other jobs still run: a
job's unexpected exception (not a UserError) is caught in `gan_platform.__main__.hydra_entry`, recorded as that job's
failure (summary.json, the traceback in the job's log file) and returned to Hydra as exit code 1,
so that Hydra's sweeper does not end the multirun with its own traceback.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gan_platform.errors import UserError
from gan_platform.runs.status import is_done

MULTIRUN_FLAGS = ("-m", "--multirun")
OUTCOMES = ".job_outcomes"
_last_sweep_dir: Optional[Path] = None  # set in this process by JobOutcomes.on_multirun_start


def is_checkable_multirun(argv: list[str]) -> bool:
    """`-m` with overrides only (no --config-dir, --cfg, ...: Hydra handles those alone)."""
    flags = [a for a in argv if a.startswith("-")]
    return bool(flags) and all(a in MULTIRUN_FLAGS for a in flags)


def sweep_jobs(argv: list[str], compose: Any) -> list[list[str]]:
    """The override list of every job of the sweep `argv`, in Hydra's order; [] when the sweeper
    is not Hydra's basic one (Optuna, Nevergrad, ... choose their jobs as they go)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from gan_platform.config.compose_errors import explain_compose_error

    parser = OverridesParser.create()
    try:
        overrides = parser.parse_overrides([a for a in argv if a not in MULTIRUN_FLAGS])
        fixed = [o.input_line for o in overrides if o.is_hydra_override() or not o.is_sweep_override()]
        sweeper = compose(fixed, return_hydra_config=True).hydra.sweeper
    except Exception as e:  # noqa: BLE001 - every composition error becomes one sentence
        raise UserError(explain_compose_error(e)) from e
    if not str(sweeper.get("_target_", "")).endswith("BasicSweeper"):
        return []
    hydra_part = [o.input_line for o in overrides if o.is_hydra_override()]
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    try:
        task = parser.parse_overrides(params + [o.input_line for o in overrides if not o.is_hydra_override()])
        batches = BasicSweeper.split_arguments(task, None)
    except Exception as e:  # noqa: BLE001
        raise UserError(explain_compose_error(e)) from e
    return [hydra_part + list(job) for batch in batches for job in batch]


def _varying(jobs: list[list[str]]) -> list[list[str]]:
    """Each job's overrides that not every job shares: what tells the jobs apart."""
    common = set.intersection(*(set(j) for j in jobs)) if len(jobs) > 1 else set()
    return [[o for o in job if o not in common] for job in jobs]


def preflight_sweep(argv: list[str]) -> int:
    """Compose and check the config of every job of the sweep; returns the number of jobs checked."""
    from hydra import compose, initialize_config_module
    from tqdm.auto import tqdm

    from gan_platform.runs.checkpoint import resolve_checkpoint
    from gan_platform.config.compose_errors import explain_compose_error
    from gan_platform.config import validate

    with initialize_config_module(config_module="gan_platform.conf", version_base="1.3"):
        jobs = sweep_jobs(argv, lambda overrides, **kw: compose("config", overrides=overrides, **kw))
        checked = set()
        for job, varying in tqdm(list(zip(jobs, _varying(jobs))), desc="checking the sweep", leave=False,
                                 disable=len(jobs) < 16):
            try:
                try:
                    cfg = compose("config", overrides=job)
                except Exception as e:  # noqa: BLE001
                    raise UserError(explain_compose_error(e)) from e
                validate(cfg)
                resume = cfg.trainer.resume
                if resume and resume != "auto" and resume not in checked:
                    resolve_checkpoint(resume)
                    checked.add(resume)
            except UserError as e:
                sentence = str(e)
                if varying:
                    sentence = f"{sentence.rstrip('.')} (in the sweep job {' '.join(varying)})."
                raise type(e)(sentence) from e
    return len(jobs)


class JobOutcomes(Callback):
    """Records how every job of a multirun ended, where the job runs, for the launching process to judge."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _last_sweep_dir
        _last_sweep_dir = Path(str(config.hydra.sweep.dir))
        shutil.rmtree(_last_sweep_dir / OUTCOMES, ignore_errors=True)  # a reused sweep dir: this sweep's jobs only

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        hydra = config.hydra
        if hydra.mode != RunMode.MULTIRUN:
            return
        failed = job_return.status != JobStatus.COMPLETED
        value = job_return._return_value
        record = {"num": int(hydra.job.num), "overrides": list(OmegaConf.to_container(hydra.overrides.task)),
                  "run_dir": str(hydra.runtime.output_dir),
                  "exit_code": 1 if failed else int(value or 0) if isinstance(value, int) else 0,
                  "exception": f"{type(value).__name__}: {value}" if failed else None}
        path = Path(str(hydra.sweep.dir)) / OUTCOMES / f"{record['num']}.json"
        try:
            from gan_platform.runs.rundir import atomic_write_json

            atomic_write_json(path, record)
        except OSError:  # the job's own summary.json still says how it ended
            pass


def failed_jobs(sweep_dir: Path) -> list[str]:
    """One line per job of the sweep in `sweep_dir` that did not finish, in job order."""
    records = []
    for path in (sweep_dir / OUTCOMES).glob("*.json"):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    records.sort(key=lambda r: r["num"])
    lines = []
    for record, varying in zip(records, _varying([r["overrides"] for r in records])):
        try:
            summary = json.loads((Path(record["run_dir"]) / "summary.json").read_text())
        except (OSError, ValueError):
            summary = {}
        status = summary.get("status") or ("failed" if record["exit_code"] else "finished")
        if is_done(status) and not record["exit_code"]:
            continue
        error = summary.get("error") or record.get("exception") or f"exit code {record['exit_code']}"
        lines.append(f"gan_platform: job {record['num']} ({' '.join(varying) or 'no overrides'}) {status}: {error} "
                     f"(run dir: {record['run_dir']})")
    return lines


def report_failed_jobs() -> int:
    """After a multirun in this process: print a line per failed job on stderr; 1 if any failed, else 0."""
    if _last_sweep_dir is None:
        return 0
    lines = failed_jobs(_last_sweep_dir)
    for line in lines:
        print(line, file=sys.stderr, flush=True)
    return 1 if lines else 0
