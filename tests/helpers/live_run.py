"""A `python -m gan_platform` process of its own (fork_server.py) that a test can watch, pause, interrupt and kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

from helpers import cli_env
from helpers.fork_server import server

PAUSE_ENV = "GAN_PLATFORM_TEST_PAUSE_IN_SAVE"


def run_dirs(cwd: Path, name: str = "default") -> list[Path]:
    base = cwd / "outputs" / name
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def logged_steps(run_dir: Path, key: str = "train/d_loss") -> list[int]:
    """Steps of the training records in metrics.jsonl, in file order (torn lines skipped)."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if key in record:
            steps.append(record["step"])
    return steps


class LiveRun:
    """`python -m gan_platform ARGS` in `cwd`; stdout and stderr go to files the test reads while it runs."""

    def __init__(self, args: list[str], cwd: Path, tag: str, pause_at: Optional[str] = None,
                 env: Optional[dict] = None, preexec_fn: Optional[Callable[[], None]] = None):
        extra = dict(env or {})
        if pause_at:
            extra[PAUSE_ENV] = pause_at
        self.out_path, self.err_path = cwd / f"{tag}.out", cwd / f"{tag}.err"
        self._out, self._err = open(self.out_path, "w"), open(self.err_path, "w")
        if preexec_fn is None:  # forked from the test fork server (fork_server.py): the imports are done
            self.proc = server(cli_env()).spawn("gan_platform", args, cwd, cli_env(extra), self.out_path, self.err_path)
        else:
            self.proc = subprocess.Popen([sys.executable, "-m", "gan_platform", *args], cwd=cwd, env=cli_env(extra),
                                         stdout=self._out, stderr=self._err, preexec_fn=preexec_fn)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
        """Poll `condition` until it holds; fail (and kill the process) if the run ends or time runs out."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"the run ended (exit {self.proc.returncode}) before {what}:\n{self.stderr[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"timed out waiting for {what}:\n{self.stderr[-3000:]}")
            time.sleep(0.01)

    def wait_paused(self, timeout: float = 180) -> str:
        """Wait for the checkpoint test hook's 'paused' line; returns it."""
        self.wait_until(lambda: "gan_platform-test: paused in save at" in self.stderr, "the pause in save", timeout)
        return next(line for line in self.stderr.splitlines() if "paused in save at" in line)

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or cleaned up."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self._out.close()
            self._err.close()

    def resumed_step(self) -> Optional[int]:
        """The step the run said it resumed from ('Resumed from ... at step N.'), or None."""
        for line in self.stdout.splitlines():
            if "Resumed from" in line and " at step " in line:
                return int(line.rsplit(" at step ", 1)[1].rstrip(". "))
        return None

    def __enter__(self) -> "LiveRun":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.kill()
