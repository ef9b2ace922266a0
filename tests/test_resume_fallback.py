"""trainer.resume=auto when checkpoints/last fails its SHA-256 check: the newest older checkpoint that
verifies takes its place, the bad folder is moved aside (never deleted), a named path gets no fallback."""

import json
from pathlib import Path

import pytest

from helpers import TINY, run_cli, train
from gan_platform.runs.checkpoint import (CorruptCheckpoint, load_for_resume, read_meta, save_checkpoint,
                                     settle_resumed)
from gan_platform.errors import UserError
from gan_platform.runs.rundir import RunDir, read_metrics

STATE = {"step": 0, "modules": {}, "optimizers": {}, "rng": [], "trainer": {}}


def _save(folder: Path, step: int) -> Path:
    return save_checkpoint(folder, {**STATE, "step": step}, step)


def corrupt(state_pt: Path, how: str = "flip") -> bytes:
    """Damage a state.pt on disk the way a bad disk or a cut copy does; returns the bytes left."""
    data = bytearray(state_pt.read_bytes())
    if how == "flip":
        middle = len(data) // 2
        data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    else:
        data = data[: len(data) // 3]
    state_pt.write_bytes(bytes(data))
    return bytes(data)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_corrupt_last_falls_back_to_the_rotation_copy(tmp_path):
    """A save killed after renaming the new last/ in (step 20) leaves last.prev/ (step 10); last/ then
    rots on disk: resume takes step 10 and keeps the bad folder as last.corrupt-1."""
    last, prev = _save(tmp_path / "last", 20), _save(tmp_path / "last.prev", 10)  # (saving last/ clears last.prev/)
    bad = corrupt(last / "state.pt", "truncate")
    found = load_for_resume(tmp_path)
    assert (found.folder, found.meta["step"], found.state["step"]) == (prev, 10, 10)
    assert [e.path for e in found.rejected] == [last / "state.pt"]
    assert listing(tmp_path) == ["last", "last.prev"]  # loading moves nothing: other processes may still read
    assert settle_resumed(tmp_path, found) == last
    assert listing(tmp_path) == ["last", "last.corrupt-1"]
    assert read_meta(last)["step"] == 10
    assert (tmp_path / "last.corrupt-1" / "state.pt").read_bytes() == bad
    assert read_meta(tmp_path / "last.corrupt-1")["step"] == 20
    _save(last, 30)  # saving goes on as usual and leaves the bad copy alone
    assert listing(tmp_path) == ["last", "last.corrupt-1"] and read_meta(last)["step"] == 30


def test_the_newest_that_verifies_wins_and_every_bad_one_is_kept(tmp_path):
    last = _save(tmp_path / "last", 20)
    _save(tmp_path / "last.prev", 10)
    _save(tmp_path / "best", 15)
    corrupt(last / "state.pt")
    found = load_for_resume(tmp_path)
    assert (found.folder.name, found.meta["step"]) == ("best", 15)  # newer than last.prev (10)
    corrupt(tmp_path / "best" / "state.pt")
    found = load_for_resume(tmp_path)
    assert (found.folder.name, found.meta["step"]) == ("last.prev", 10)
    assert [e.path.parent.name for e in found.rejected] == ["last", "best"]
    settle_resumed(tmp_path, found)
    assert listing(tmp_path) == ["best.corrupt-1", "last", "last.corrupt-1"]
    assert read_meta(tmp_path / "last")["step"] == 10
    assert read_meta(tmp_path / "best.corrupt-1")["step"] == 15 and read_meta(tmp_path / "last.corrupt-1")["step"] == 20


def test_a_last_without_a_readable_meta_falls_back_to_a_copy_of_best(tmp_path):
    last = _save(tmp_path / "last", 20)
    _save(tmp_path / "best", 5)
    (last / "meta.json").write_text('{"format": "gan_platform.checkp')  # cut short
    found = load_for_resume(tmp_path)
    assert (found.folder.name, found.meta["step"]) == ("best", 5)
    assert "has no readable meta.json" in str(found.rejected[0])
    settle_resumed(tmp_path, found)
    assert listing(tmp_path) == ["best", "last", "last.corrupt-1"]
    assert read_meta(tmp_path / "last")["step"] == read_meta(tmp_path / "best")["step"] == 5  # best stays as it was
    assert (tmp_path / "last.corrupt-1" / "meta.json").read_text() == '{"format": "gan_platform.checkp'


def test_when_nothing_verifies_the_one_sentence_stays_and_nothing_moves(tmp_path):
    last = _save(tmp_path / "last", 20)
    _save(tmp_path / "best", 5)
    corrupt(last / "state.pt")
    corrupt(tmp_path / "best" / "state.pt", "truncate")
    with pytest.raises(CorruptCheckpoint) as info:
        load_for_resume(tmp_path)
    assert str(info.value) == (f"Checkpoint '{last / 'state.pt'}' is truncated or corrupt (its SHA-256 does not match "
                               "meta.json): resume from another checkpoint.")
    assert isinstance(info.value, UserError)
    assert listing(tmp_path) == ["best", "last"]


def test_a_good_last_is_taken_as_before(tmp_path):
    assert load_for_resume(tmp_path) is None  # a fresh start
    _save(tmp_path / "best", 30)
    assert load_for_resume(tmp_path) is None  # no last/: a fresh start, as before
    _save(tmp_path / "last", 20)
    found = load_for_resume(tmp_path)
    assert (found.folder.name, found.meta["step"], found.rejected) == ("last", 20, [])  # never a newer best


ARGS = TINY + ["dataset=ring8", "model=mlp", "model.generator.hidden=16", "model.discriminator.hidden=16",
               "trainer.log_every=5", "trainer.sample_every=0", "trainer.checkpoint_every=0", "eval.every=0", "seed=4"]


def test_resume_auto_past_a_corrupt_last_from_the_command_line(tmp_path):
    """A real run: best/ at step 5, last/ at step 10; last/state.pt rots; `trainer.resume=auto` resumes
    from step 5, finishes, and the corrupt folder is kept as last.corrupt-1; a named path is refused."""
    run_dir = tmp_path / "outputs" / "default" / "2026-01-01_00-00-00"
    train(run_dir, ARGS + ["trainer.steps=5"])
    train(run_dir, ARGS + ["trainer.steps=10", "trainer.resume=auto", "eval.best_metric=null"])
    ckpts = run_dir / "checkpoints"
    assert (read_meta(ckpts / "last")["step"], read_meta(ckpts / "best")["step"]) == (10, 5)
    bad = corrupt(ckpts / "last" / "state.pt")

    proc = run_cli(ARGS + ["trainer.steps=15", "trainer.resume=auto"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"Resumed from {ckpts / 'best'} at step 5." in proc.stdout
    (warning,) = [line for line in proc.stdout.splitlines() if "moved it aside" in line]
    assert f"Checkpoint '{ckpts / 'last' / 'state.pt'}' is truncated or corrupt" in warning
    assert f"'{ckpts / 'last.corrupt-1'}'" in warning and warning.endswith("at step 5.")
    assert (ckpts / "last.corrupt-1" / "state.pt").read_bytes() == bad
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["status"], summary["step"], summary["checkpoint_step"]) == ("finished", 15, 15)
    assert read_meta(ckpts / "last")["step"] == 15
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "train/d_loss" in r] == [5, 10, 15]

    # trainer.resume=PATH names the file: no fallback, the one sentence, nothing moved
    bad = corrupt(ckpts / "last" / "state.pt", "truncate")
    before = listing(ckpts)
    with pytest.raises(UserError, match=r"state\.pt' is truncated or corrupt"):
        train(tmp_path / "elsewhere", ARGS + ["trainer.steps=20", f"trainer.resume={run_dir}"])
    RunDir(tmp_path / "elsewhere").unlock()
    assert listing(ckpts) == before and (ckpts / "last" / "state.pt").read_bytes() == bad


def test_resume_auto_finds_a_run_whose_last_meta_json_is_damaged(tmp_path):
    """The command line picks the run dir by its checkpoint's step: with last/meta.json unreadable,
    best/ tells it the run is unfinished (else a new run would start beside it)."""
    from gan_platform.config.resume import find_resumable

    ckpts = tmp_path / "outputs" / "default" / "2026-01-01_00-00-00" / "checkpoints"
    _save(ckpts / "last", 8)
    _save(ckpts / "best", 5)
    (ckpts / "last" / "meta.json").write_text("{")
    assert find_resumable("default", 10, tmp_path / "outputs") == ckpts.parent
    assert find_resumable("default", 5, tmp_path / "outputs") is None  # best already at the end: nothing to continue


def test_resume_auto_finds_a_run_killed_before_its_first_or_after_its_last_checkpoint(tmp_path):
    """A run killed after its final checkpoint (summary.json still `running`) has its final
    evaluation to do; one killed before its first checkpoint starts over in its own dir; a finished
    run at its last step is done."""
    from gan_platform.config.resume import find_resumable
    from gan_platform.runs.rundir import RunDir

    run = tmp_path / "outputs" / "default" / "2026-01-01_00-00-00"
    RunDir(run).write_summary({"status": "running", "step": 3})
    assert find_resumable("default", 10, tmp_path / "outputs") == run  # no checkpoint yet
    _save(run / "checkpoints" / "last", 10)
    RunDir(run).write_summary({"status": "running", "step": 10})
    assert find_resumable("default", 10, tmp_path / "outputs") == run
    RunDir(run).write_summary({"status": "finished", "step": 10})
    assert find_resumable("default", 10, tmp_path / "outputs") is None
