"""Checkpoints load safely (never run code, refuse what is not ours or cut short, one sentence) and
a save killed at any stage leaves a complete checkpoint that resume finds."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from helpers import TINY, run_cli, train
from gan_platform.runs.checkpoint import (FORMAT, find_checkpoint, load_checkpoint, read_meta, save_checkpoint,
                                     settle_checkpoint)
from gan_platform.errors import UserError


def create_file(path: str) -> None:
    """What a malicious checkpoint would run on load."""
    Path(path).write_text("this ran")


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return create_file, (str(self.marker),)


@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    train(run_dir, TINY + ["dataset=ring8", "model=mlp", "model.generator.hidden=8", "model.discriminator.hidden=8",
                           "trainer.steps=2", "trainer.sample_every=0"])
    return run_dir / "checkpoints" / "last"


def fake_checkpoint(folder: Path, state_bytes: bytes, **meta) -> Path:
    """A folder laid out like a checkpoint, with a meta.json whose SHA-256 matches `state_bytes`."""
    folder.mkdir(parents=True)
    (folder / "state.pt").write_bytes(state_bytes)
    full = {"format": FORMAT, "version": 1, "step": 3, "sha256": hashlib.sha256(state_bytes).hexdigest(), **meta}
    (folder / "meta.json").write_text(json.dumps({k: v for k, v in full.items() if v is not None}))
    return folder


def pickled(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def refused(path: Path, *phrases: str) -> str:
    with pytest.raises(UserError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "\n" not in message and message.endswith(".")
    for phrase in phrases:
        assert phrase in message, message
    return message


def test_a_pickle_with_code_is_refused_and_never_run(tmp_path):
    # the payload does run when unpickled without weights_only: the test can fail
    unsafe_marker, marker = tmp_path / "ran_unsafely", tmp_path / "ran"
    torch.load(fake_checkpoint(tmp_path / "probe", pickled({"x": Payload(unsafe_marker)})) / "state.pt", weights_only=False)
    assert unsafe_marker.read_text() == "this ran"

    evil = {"step": 3, "modules": {}, "optimizers": {}, "rng": [], "trainer": Payload(marker)}
    folder = fake_checkpoint(tmp_path / "evil", pickled(evil))
    refused(folder, "could not be loaded safely (UnpicklingError)", "not a gan_platform checkpoint")
    assert not marker.exists()


def test_resume_from_a_pickle_with_code_on_the_command_line(tmp_path):
    marker = tmp_path / "ran"
    evil = {"step": 3, "modules": {}, "optimizers": {}, "rng": [], "trainer": Payload(marker)}
    fake_checkpoint(tmp_path / "evil" / "checkpoints" / "last", pickled(evil))
    proc = run_cli(["dataset=ring8", "trainer.progress=false", "trainer.resume=evil"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.strip()]
    assert line.startswith("gan_platform: error: Checkpoint ") and "could not be loaded safely" in line
    assert not marker.exists()
    assert json.loads((tmp_path / "evil" / "summary.json").read_text())["status"] == "failed"


def test_a_truncated_state_is_refused(tmp_path, real_checkpoint):
    folder = tmp_path / "last"
    shutil.copytree(real_checkpoint, folder)
    data = (folder / "state.pt").read_bytes()
    (folder / "state.pt").write_bytes(data[: len(data) // 2])
    refused(folder, "is truncated or corrupt", "SHA-256 does not match")
    # ... also when meta.json was rewritten to match the cut file: torch cannot read it
    shutil.rmtree(folder)
    refused(fake_checkpoint(folder, data[: len(data) // 2]), "could not be loaded safely")


@pytest.mark.parametrize("meta,phrase", [
    ({"format": "someone.else"}, "is not a gan_platform checkpoint"),
    ({"step": "three"}, "is not a gan_platform checkpoint"),
    ({"sha256": None}, "has no SHA-256"),
    ({"version": 99}, "written by a newer gan_platform (format 99)"),
])
def test_a_meta_json_of_another_kind_is_refused(tmp_path, real_checkpoint, meta, phrase):
    folder = fake_checkpoint(tmp_path / "last", (real_checkpoint / "state.pt").read_bytes(), **meta)
    refused(folder, phrase)


def test_files_that_are_not_checkpoints_are_refused(tmp_path):
    random_bytes = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy().tobytes()
    (tmp_path / "random.bin").write_bytes(random_bytes)
    refused(tmp_path / "random.bin", "is not a gan_platform checkpoint")
    refused(tmp_path / "nowhere", "the path does not exist")
    (tmp_path / "notjson").mkdir()
    (tmp_path / "notjson" / "meta.json").write_text("{not json")
    (tmp_path / "notjson" / "state.pt").write_bytes(random_bytes)
    refused(tmp_path / "notjson", "is not a gan_platform checkpoint")
    refused(fake_checkpoint(tmp_path / "random", random_bytes), "could not be loaded safely")
    # safe to load, but plain weights, not a training state of this platform
    refused(fake_checkpoint(tmp_path / "weights", pickled({"weight": torch.ones(3)})), "does not hold a gan_platform training state")


# -- what a kill at each stage of a save leaves, and what resume does with it -----------------------

STATE = {"step": 0, "modules": {}, "optimizers": {}, "rng": [], "trainer": {}}


def _save(folder: Path, step: int) -> Path:
    return save_checkpoint(folder, {**STATE, "step": step}, step)


def _layout(root: Path, stage: str) -> Path:
    """checkpoints/last as a save of step 20 over step 10 leaves it when killed at `stage`."""
    last, tmp, prev = root / "last", root / "last.tmp", root / "last.prev"
    _save(last, 10)
    if stage == "writing_state":
        tmp.mkdir()
        (tmp / "state.pt").write_bytes(b"PK\x03\x04 half")
    elif stage == "state_written":
        tmp.mkdir()
        (tmp / "state.pt").write_bytes(pickled({**STATE, "step": 20}))
    else:
        _save(root / "new", 20).rename(tmp)
        if stage in ("rotated", "renamed"):
            last.rename(prev)
        if stage == "renamed":
            tmp.rename(last)
    return last


@pytest.mark.parametrize("stage,step", [("writing_state", 10), ("state_written", 10), ("complete", 20),
                                        ("rotated", 20), ("renamed", 20)])
def test_a_save_killed_at_any_stage_leaves_a_complete_checkpoint(tmp_path, stage, step):
    last = _layout(tmp_path, stage)
    found = find_checkpoint(last)
    assert read_meta(found)["step"] == step
    state, meta = load_checkpoint(found)
    assert state["step"] == meta["step"] == step
    # resume puts it back at last/ and clears the twins; the next save works as usual
    assert settle_checkpoint(last) == last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    assert load_checkpoint(last)[1]["step"] == step
    _save(last, 30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"] and read_meta(last)["step"] == 30
