"""Two real processes on the CPU (gloo), started the way users start them:

    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m gan_platform ...
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from helpers import cli_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], cwd: Path, tmp: Path) -> subprocess.Popen:
    """`accelerate launch` with two CPU processes, as the README says; scratch files go to `tmp`."""
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "gan_platform", *args]
    env = cli_env({"ACCELERATE_USE_CPU": "1", "CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(tmp)})
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


def only_run_dir(cwd: Path, name: str) -> Path:
    runs = [p for p in (cwd / "outputs").rglob("summary.json")]
    assert [p.parent.parent.name for p in runs] == [name], f"expected one run dir of {name}, found {runs}"
    return runs[0].parent
