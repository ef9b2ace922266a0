"""`trainer.resume=auto` continues only a run this command made: the newest unfinished run of the
experiment whose config matches; where none matches it names what differs and the exact command
that continues the run it found; an interrupted run's last line gives that command too."""

from __future__ import annotations

import json
import shlex
import signal

import pytest

from helpers import TINY, compose, run_cli
from gan_platform.config.resume import config_differences, find_resumable, resume_command
from gan_platform.errors import UserError
from helpers.live_run import LiveRun, logged_steps, run_dirs

pytestmark = pytest.mark.slow

RING = TINY + ["+experiment=none", "model.generator.hidden=16", "model.discriminator.hidden=16",
               "trainer.log_every=2", "trainer.sample_every=0", "eval.every=0", "eval.num_samples=100"]


def _interrupted_run(tmp_path, extra: list[str]) -> tuple[str, str]:
    """A run of `extra` stopped by Ctrl-C after its first log step: (its run dir, its last line)."""
    with LiveRun(RING + ["trainer.steps=100000", *extra], tmp_path, "first") as run:
        run.wait_until(lambda: any(logged_steps(d) for d in run_dirs(tmp_path, "none")), "a log step")
        run.signal(signal.SIGINT)
        assert run.wait() == 130
    (run_dir,) = run_dirs(tmp_path, "none")
    return str(run_dir), run.stderr.strip().splitlines()[-1]


def test_the_first_time_users_resume_continues_their_run_or_names_what_differs(tmp_path):
    """A run made with overrides (here: the grid instead of the ring) is not what `+experiment=none
    trainer.resume=auto` composes: refused with the keys that differ and the command that continues
    it; that command then continues it, in its own dir. The interrupted run's last line gives it too."""
    run_dir, last = _interrupted_run(tmp_path, ["dataset=grid25"])
    assert "run ended with status 'interrupted'" in last and "continue it with: python -m gan_platform" in last
    command = last.split("continue it with: ", 1)[1]
    assert "dataset=grid25" in command and f"trainer.resume={run_dir}" in command

    refused = run_cli(RING + ["trainer.steps=100000", "trainer.resume=auto"], cwd=tmp_path, timeout=120)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if x.strip()]
    assert line.startswith("gan_platform: error: trainer.resume=auto found no unfinished 'none' run with this config")
    assert "dataset._target_" in line and command in line  # the same command as the run's own last line
    assert run_dirs(tmp_path, "none") == [tmp_path / "outputs" / "none" / run_dir.rsplit("/", 1)[1]]  # nothing new

    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "gan_platform"]
    resumed = run_cli([*words[3:], "trainer.steps=6"], cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "outputs" / "none" / run_dir.rsplit("/", 1)[1] / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["step"] == 6 and len(run_dirs(tmp_path, "none")) == 1


def test_auto_skips_a_newer_run_of_other_settings_for_the_older_one_that_matches(tmp_path):
    older, _ = _interrupted_run(tmp_path, [])
    newer = tmp_path / "outputs" / "none" / "9999-01-01_00-00-00"  # newest by name and time
    import shutil

    shutil.copytree(older, newer)
    (newer / ".hydra" / "config.yaml").write_text((newer / ".hydra" / "config.yaml").read_text()
                                                  .replace("hidden: 16", "hidden: 24"))
    cfg = compose(RING + ["trainer.steps=100000", "trainer.resume=auto"])
    assert find_resumable("none", 100000, tmp_path / "outputs", cfg=cfg) == tmp_path / "outputs" / "none" / older.rsplit("/", 1)[1]


def test_what_a_resume_may_change_and_what_it_may_not():
    base = compose(RING)
    assert config_differences(base, compose(RING + ["trainer.steps=99", "optimizer.lr=1e-5", "eval.every=7",
                                                    "tracker=wandb", "trainer.log_every=3"])) == []
    changed = config_differences(base, compose(RING + ["seed=3", "loss=hinge", "optimizer=rmsprop"]))
    keys = [k for k, _, _ in changed]
    assert "seed" in keys and "loss.name" in keys and "optimizer._target_" in keys
    assert ("seed", 0, 3) in changed


def test_a_run_made_before_a_key_existed_still_matches_and_a_key_it_had_still_counts():
    """A run saved by an earlier version lacks the keys added since (micro_batch, the phases, FreezeD):
    they are not compared, so an upgrade finds its unfinished runs; a key the run had and this
    command lacks, or sets otherwise, still counts."""
    from omegaconf import OmegaConf

    cfg = compose(RING)
    old = OmegaConf.to_container(cfg, resolve=False)
    del old["trainer"]["micro_batch"], old["task"]["phases"], old["model"]["discriminator"]["freeze"]
    assert config_differences(OmegaConf.create(old), cfg) == []
    old["model"]["discriminator"]["retired_option"] = 1  # a key this version no longer has
    old["seed"] = 7
    assert config_differences(OmegaConf.create(old), cfg) == [("model.discriminator.retired_option", 1, None),
                                                             ("seed", 7, 0)]


def test_without_any_unfinished_run_auto_starts_fresh_and_a_refusal_is_one_sentence(tmp_path):
    assert find_resumable("none", 10, tmp_path / "outputs", cfg=compose(RING)) is None
    with pytest.raises(UserError) as info:
        from gan_platform.config.resume import _refusal

        raise UserError(_refusal("none", tmp_path / "r", [("seed", 0, 1)] * 5))
    assert "and 2 more key(s)" in str(info.value) and str(info.value).count(". ") == 0
    assert resume_command(tmp_path / "r", ["+experiment=none", "trainer.resume=auto", "x='a b'"]) == \
        f"python -m gan_platform +experiment=none 'x='\"'\"'a b'\"'\"'' trainer.resume={tmp_path / 'r'}"
