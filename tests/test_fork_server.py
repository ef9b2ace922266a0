"""The test fork server (helpers/fork_server.py) against a real interpreter: the command-line contracts the
suite checks through forked runs hold the same in a fresh `python -m gan_platform` (exit codes, the
one-sentence error on stderr, the closing line, Ctrl-C), so what the fork server shows is what a user
gets."""

from __future__ import annotations

import re
import signal

import pytest

from helpers import TINY, run_cli
from helpers.live_run import LiveRun, logged_steps, run_dirs

pytestmark = pytest.mark.slow

RING = TINY + ["+experiment=none", "model.generator.hidden=16", "model.discriminator.hidden=16", "trainer.sample_every=0",
               "eval.every=0", "eval.num_samples=100"]


def _same_lines(text: str, tmp_path) -> list[str]:
    """stderr's non-empty lines with the paths and timings that differ from run to run masked."""
    text = text.replace(str(tmp_path), "TMP")
    text = re.sub(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", "TIME", text)
    text = re.sub(r"\[TIME[^\]]*\]|\[\d{4}-\d\d-\d\d [\d:,]+\]", "[WHEN]", text)
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("args, code", [
    (["trainer.steps=0"], 2),                               # a config error: one sentence, exit 2
    (["loss=nonesuch"], 2),                                 # a composition error
    (RING + ["trainer.steps=3", "trainer.log_every=3"], 0),  # a finished run: its closing line
])
def test_forked_and_fresh_interpreters_give_the_same_exit_code_and_stderr(tmp_path, args, code):
    seen = []
    for fork in (True, False):
        where = tmp_path / ("forked" if fork else "fresh")
        where.mkdir()
        proc = run_cli(args, cwd=where, fork=fork, timeout=300)
        assert proc.returncode == code, proc.stderr
        seen.append(_same_lines(proc.stderr.replace(str(where), "TMP"), tmp_path))
    assert seen[0] == seen[1]
    assert seen[0][-1].startswith("gan_platform: error: " if code else "gan_platform: run finished")


def test_ctrl_c_is_the_same_in_a_forked_and_a_fresh_interpreter(tmp_path):
    ends = []
    for fork in (True, False):
        where = tmp_path / ("forked" if fork else "fresh")
        where.mkdir()
        fresh = {} if fork else {"preexec_fn": lambda: None}  # LiveRun starts a real interpreter for a preexec_fn
        with LiveRun(RING + ["trainer.steps=100000", "trainer.log_every=2"], where, "run", **fresh) as run:
            run.wait_until(lambda: any(logged_steps(d) for d in run_dirs(where, "none")), "a log step")
            run.signal(signal.SIGINT)
            ends.append((run.wait(), re.sub(r"\d+", "N", run.stderr.strip().splitlines()[-1].replace(str(where), "TMP"))))
    assert ends[0] == ends[1] and ends[0][0] == 130
    assert ends[0][1].startswith("gan_platform: run ended with status 'interrupted'")
