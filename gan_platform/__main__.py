"""`python -m gan_platform +experiment=wgan [overrides]` (or `gan-train`): the command line.

It checks the config before Hydra creates a run dir (config/preflight.py: one sentence and exit
code 2 for every composition or value error), then trains (run.py).

In a multirun, a job that fails (a UserError, or any unexpected exception) prints one line and
returns its exit code to Hydra instead of raising, so the other jobs run and the multirun ends
with one line per failed job (sweep/multirun.py); an unexpected exception's traceback goes to the job's
log file.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import gan_platform.conf  # noqa: F401  (registers the config schema)
from gan_platform.config.preflight import _rank, append_experiment, preflight
from gan_platform.errors import EXIT_USER_ERROR, UserError, report_and_exit
from gan_platform.runs.status import Status, exit_code, succeeded



def _is_plain_run(argv: list[str]) -> bool:
    """True for `key=value` overrides only (no --help, --cfg, -m, ...: Hydra handles those)."""
    return all(not a.startswith("-") for a in argv)


def _mark_ended(run_dir: str, status: str, error: str) -> bool:
    """summary.json says how the run ended, also when it ended before the trainer wrote it; True
    when this wrote it (the trainer had not recorded the end itself)."""
    if _rank() != 0:
        return False
    from gan_platform.runs.rundir import RunDir

    rd = RunDir(run_dir)
    if rd.in_use():  # another live run's dir (the run-dir lock refused this one): not ours to mark
        return False
    old = rd.read_summary()
    if old.get("status") in (None, Status.RUNNING):  # never leave "running", never overwrite the trainer's word
        try:
            rd.write_summary({**old, "status": status, "error": error})
            return True
        except OSError:
            pass
    return False


def describe_error(error: BaseException) -> str:
    """`Type: message` of the error itself, not of Hydra's InstantiationException around it."""
    from hydra.errors import InstantiationException

    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return f"{type(error).__name__}: {error}"


def _log_to_job_file(message: str, error: BaseException) -> list[str]:
    """`message` and the traceback of `error` into the job's log file only (Hydra's file handler):
    the console of a multirun keeps one line per job. Returns the files written."""
    import logging

    record = logging.getLogger("gan_platform").makeRecord(
        "gan_platform", logging.ERROR, __file__, 0, message, (), (type(error), error, error.__traceback__))
    files = [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]
    for handler in files:
        handler.handle(record)
    return [h.baseFilename for h in files]


def closing_line(summary: dict, run_dir: str) -> str:
    """The run's last console line, after W&B's banner: status, headline metrics, run dir, report."""
    from pathlib import Path

    from gan_platform.runs.metrics import headline_metrics
    from gan_platform.tracking.report.run_page import REPORT_NAME

    final = summary.get("final") or {}
    shown = ", ".join(f"{k} {final[k]:.4g}" if isinstance(final[k], float) else f"{k} {final[k]}"
                      for k in headline_metrics(final))
    report = Path(run_dir) / REPORT_NAME
    tracked = f"; {summary['tracker']}" if summary.get("tracker") else ""
    return (f"gan_platform: run {summary['status']}" + (f": {shown}" if shown else "")
            + f" (run dir: {run_dir}; report: {report if report.exists() else 'none, report=false'}{tracked})")


def ended_line(summary: dict, run_dir: str, overrides: list[str]) -> str:
    """The last console line of a run that did not finish: its status, why, its run dir and, for a
    run that was interrupted, the command that continues it."""
    from pathlib import Path

    from gan_platform.config.resume import resume_command

    tracked = f"; {summary['tracker']}" if summary.get("tracker") else ""
    line = (f"gan_platform: run ended with status '{summary['status']}'"
            + (f": {summary['error']}" if summary.get("error") else "") + f" (run dir: {run_dir}{tracked})")
    if summary["status"] in (Status.INTERRUPTED, Status.PREEMPTED) and summary.get("checkpoint_step") is not None:
        line += f"; continue it with: {resume_command(Path(run_dir), overrides)}"
    return line


@hydra.main(version_base="1.3", config_path="pkg://gan_platform.conf", config_name="config")
def hydra_entry(cfg: DictConfig) -> int:
    from gan_platform.run import run

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        summary = run(cfg, run_dir, checked=True)  # pre-flight (or the multirun's) checked this config
    except UserError as e:
        _mark_ended(run_dir, Status.FAILED, str(e))
        if HydraConfig.get().mode.name == "MULTIRUN":  # one bad job must not end the other jobs
            print(f"gan_platform: error: {e} (run dir: {run_dir})", file=sys.stderr, flush=True)
            return EXIT_USER_ERROR
        report_and_exit(e)
    except KeyboardInterrupt:  # Ctrl-C before training started (the trainer handles it after)
        _mark_ended(run_dir, Status.INTERRUPTED, "stopped by Ctrl-C before training started")
        report_and_exit(UserError("Stopped by Ctrl-C before training started; nothing was trained."),
                        exit_code(Status.INTERRUPTED))
    except Exception as e:
        error = describe_error(e)
        recorded_here = _mark_ended(run_dir, Status.FAILED, error)
        if HydraConfig.get().mode.name != "MULTIRUN":
            raise
        # A multirun job: this job failed, the other jobs go on, and the multirun ends with a line per
        # failed job (sweep/multirun.py). The trainer logs the traceback of a failure during training itself.
        where = _log_to_job_file(f"Job failed: {error}", e) if recorded_here else []
        print(f"gan_platform: error: {error} (run dir: {run_dir}"
              + (f"; traceback in {where[0]}" if where else "") + ")", file=sys.stderr, flush=True)
        return exit_code(Status.FAILED)
    code = exit_code(summary["status"])
    if succeeded(summary["status"]) and _rank() == 0:
        print(closing_line(summary, run_dir), file=sys.stderr, flush=True)
    elif _rank() == 0:  # preempted exits 0 too, and says so in this line
        print(ended_line(summary, run_dir, list(HydraConfig.get().overrides.task)), file=sys.stderr)
    if code and not HydraConfig.get().mode.name == "MULTIRUN":
        sys.exit(code)
    return code


def main(argv: Optional[list[str]] = None) -> int:
    from gan_platform.training.cluster import export_task_ranks

    argv = append_experiment(list(sys.argv[1:] if argv is None else argv))
    try:
        export_task_ranks()  # one task a GPU (srun): the ranks the cluster gave, before anything asks for this one's
    except UserError as e:
        report_and_exit(e)
    from gan_platform.sweep.multirun import is_checkable_multirun, preflight_sweep, report_failed_jobs

    multirun = is_checkable_multirun(argv)
    try:
        if _is_plain_run(argv):
            from gan_platform.sweep.agent import agent_overrides  # a trial of `wandb agent`: see there

            argv += preflight(argv, agent_overrides)
        elif multirun:  # -m: every job of the sweep is checked before any starts (gan_platform/sweep/multirun.py)
            preflight_sweep(argv)
    except UserError as e:
        if _rank() > 0:  # every process composed the same config: rank 0 says what is wrong, once
            sys.exit(EXIT_USER_ERROR)
        report_and_exit(e)
    scratch = None
    if _rank() > 0:
        # Only the main process writes the run dir; the others get a scratch dir (removed at the end) and no logs.
        from gan_platform.training.distributed import SCRATCH_PREFIX

        scratch = tempfile.mkdtemp(prefix=SCRATCH_PREFIX)
        argv += [f"hydra.run.dir={scratch}", "hydra.output_subdir=null", "hydra/job_logging=disabled"]
    sys.argv = [sys.argv[0]] + argv
    try:
        hydra_entry()
    finally:
        if scratch is not None:
            from gan_platform.training.distributed import clean_scratch_dir

            clean_scratch_dir(scratch)
    return report_failed_jobs() if multirun and _rank() == 0 else 0


__all__ = ["main", "EXIT_USER_ERROR"]

if __name__ == "__main__":
    # Run the importable copy of this module: Hydra's launchers (submitit on SLURM) pickle `hydra_entry`
    # by its module's name, and `__main__` is not a name another process can import.
    from gan_platform.__main__ import main as _main

    sys.exit(_main())
