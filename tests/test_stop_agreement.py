"""Several processes agree on a stop about once a second (training/stopping.py), measured on two real
CPU processes under `accelerate launch`: a Ctrl-C that reaches one rank stops both at the same
iteration, and no later than the next agreement after about a second of iterations."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from helpers import cli_env
from helpers.launch import free_port

pytestmark = pytest.mark.slow

ITERATION_S, SIGNAL_AT = 0.02, 150  # a 20 ms iteration: about 50 a second; rank 1 is signalled at 150

LOOP = f"""
import os, signal, time
import torch
from accelerate import Accelerator
from gan_platform.training.stopping import StopRequest

acc = Accelerator(cpu=True)
stop = StopRequest(acc)
agreements, agreed = [], stop.agreed
stop.agreed = lambda step=None: agreements.append(step) or agreed(step)  # watch when the collective runs
stop.install()
stop.start(0)
step = 0
while step < 10000:
    time.sleep({ITERATION_S})
    step += 1
    if acc.process_index == 1 and step == {SIGNAL_AT}:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C on one rank only
    if stop.should_stop(step, log_step=False):
        print(f"rank {{acc.process_index}} stopped at {{step}} ({{stop.status}}) after agreements at {{agreements}}", flush=True)
        break
acc.wait_for_everyone()
torch.distributed.destroy_process_group()  # a clean end of the process group: no teardown race between the ranks
"""


def test_a_stop_on_one_rank_stops_both_at_the_same_iteration_within_about_a_second(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), str(script)]
    env = cli_env({"ACCELERATE_USE_CPU": "1", "CUDA_VISIBLE_DEVICES": "", "TMPDIR": str(tmp_path)})
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    stops = {rank: (int(at), [int(a) for a in agreed.split(", ")]) for rank, at, agreed in
             re.findall(r"rank (\d) stopped at (\d+) \(interrupted\) after agreements at \[([\d, ]+)\]", done.stdout)}
    assert set(stops) == {"0", "1"} and stops["0"] == stops["1"], done.stdout  # the same iterations on both
    at, agreed = stops["0"]
    assert at == agreed[-1] == min(a for a in agreed if a >= SIGNAL_AT)  # the first agreement after the signal
    gaps = [b - a for a, b in zip(agreed[1:], agreed[2:])]  # after the first one (one iteration in)
    # about once a second: never more than a second's iterations (an iteration cannot be shorter than its
    # sleep, so a loaded machine only shortens the gaps), and not every iteration either
    assert gaps and all(10 <= g <= round(1.0 / ITERATION_S) + 2 for g in gaps), agreed
