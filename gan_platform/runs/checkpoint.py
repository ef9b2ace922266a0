"""Checkpoints: written atomically, loaded safely.

A checkpoint is a folder holding ``state.pt`` (everything the run needs to continue: networks,
optimizers, schedulers, counters, RNG states) and ``meta.json`` (format, step, the SHA-256 of
state.pt), written last. Saving writes ``NAME.tmp/`` in full, fsyncs it, moves the old ``NAME/``
aside to ``NAME.prev/``, renames the new one into place and deletes the old one. A kill at any
moment leaves at least one complete folder among ``NAME/``, ``NAME.prev/`` and ``NAME.tmp/``;
`find_checkpoint` picks the complete one with the highest step and `settle_checkpoint` puts it back
at ``NAME/``. A write that fails (disk full) removes its ``NAME.tmp/`` and leaves ``NAME/`` as it was.

Loading uses ``torch.load(weights_only=True)``: a checkpoint cannot run code. A folder or file that
is not a checkpoint of this platform, or one cut short, is refused with one sentence.
trainer.resume=auto goes further (`load_for_resume`): when checkpoints/last fails its SHA-256 check,
it resumes from the newest older checkpoint that passes (last.prev, last.tmp, best) and moves the
bad folder aside to ``last.corrupt-N/``, never deleting it. A path the user names gets no fallback.

Test hook: ``GAN_PLATFORM_TEST_PAUSE_IN_SAVE=STAGE`` (or ``STAGE@STEP``) makes the first save (of
that step) print ``gan_platform-test: paused in save at STAGE (step N)`` on stderr and sleep,
so that a test can kill the process at a known point of the write. The stages, in order:
``writing_state`` (half of state.pt written), ``state_written`` (no meta.json yet), ``complete``
(NAME.tmp complete, not yet in place), ``rotated`` (old NAME moved to NAME.prev, new one not yet
renamed), ``renamed`` (new NAME in place, NAME.prev not yet deleted). The trainer adds
``evaluated`` (an evaluation's record written and logged, before its best checkpoint is saved), so
that a test can kill a run inside its final evaluation. Unset, it costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from gan_platform.errors import UserError
from gan_platform.runs.rundir import atomic_write_json

FORMAT = "gan_platform.runs.checkpoint"
VERSION = 1
STATE_FILE = "state.pt"
META_FILE = "meta.json"
STATE_KEYS = ("step", "modules", "optimizers", "rng", "trainer")
log = logging.getLogger(__name__)
PAUSE_ENV = "GAN_PLATFORM_TEST_PAUSE_IN_SAVE"
_paused_once = False


def pause_for_test(stage: str, step: int) -> None:
    """The test hook described in the module docstring: pause at `stage` of `step` when asked to."""
    global _paused_once
    want = os.environ.get(PAUSE_ENV)
    if not want or _paused_once:
        return
    name, _, at = want.partition("@")
    if name != stage or (at and int(at) != step):
        return
    _paused_once = True
    print(f"gan_platform-test: paused in save at {stage} (step {step})", file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _twins(folder: Path) -> tuple[Path, Path]:
    return folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".prev")


def _write_complete_folder(tmp: Path, state: dict[str, Any], step: int, extra_meta: Optional[dict]) -> None:
    """state.pt (serialised in memory first, so a failing disk raises a plain OSError), then meta.json."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getbuffer()
    with open(tmp / STATE_FILE, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        f.flush()
        pause_for_test("writing_state", step)
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())
    pause_for_test("state_written", step)
    meta = {"format": FORMAT, "version": VERSION, "step": int(step), "sha256": hashlib.sha256(data).hexdigest(),
            **(extra_meta or {})}
    atomic_write_json(tmp / META_FILE, meta)
    _fsync_dir(tmp)


def save_checkpoint(folder: str | os.PathLike, state: dict[str, Any], step: int, extra_meta: Optional[dict] = None) -> Path:
    """Write `state` as checkpoint folder `folder` atomically; returns the folder.

    An OSError (disk full, no permission) removes the partial NAME.tmp/ and raises a UserError;
    the previous checkpoint is untouched."""
    final = Path(folder)
    tmp, prev = _twins(final)
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        _write_complete_folder(tmp, state, step, extra_meta)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"Could not write checkpoint '{final}' ({e.strerror or e}); the previous checkpoint is kept: "
                        "free disk space (or fix the folder's permissions) and continue with trainer.resume=auto.") from e
    pause_for_test("complete", step)
    if final.exists():
        if prev.exists():
            shutil.rmtree(prev)
        os.replace(final, prev)
        pause_for_test("rotated", step)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    pause_for_test("renamed", step)
    if prev.exists():
        shutil.rmtree(prev)
    return final


def read_meta(folder: Path) -> Optional[dict]:
    """The meta.json of a complete checkpoint folder, or None."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("step"), int) \
            or not isinstance(meta.get("version"), int) or not (folder / STATE_FILE).is_file():
        return None
    return meta


def find_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    """The complete checkpoint with the highest step among `folder` (e.g. checkpoints/last) and the
    `.prev`/`.tmp` twins a killed save leaves behind; on a tie `folder` itself. None if none is complete."""
    folder = Path(folder)
    best, best_step = None, -1
    for candidate in (folder, *_twins(folder)):
        meta = read_meta(candidate)
        if meta is not None and meta["step"] > best_step:
            best, best_step = candidate, meta["step"]
    return best


def settle_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    """Put the checkpoint `find_checkpoint` picks back at `folder` and delete its twins, so that
    the next save starts from a clean slate; every intermediate state keeps a complete copy."""
    folder = Path(folder)
    found = find_checkpoint(folder)
    if found is None:
        return None
    return _put_in_place(found, folder)


def _put_in_place(chosen: Path, folder: Path) -> Path:
    """Make `chosen` (a complete checkpoint) the one at `folder` and drop folder's tmp/prev twins."""
    if chosen != folder:
        if folder.exists():  # an older complete one, or a bad one already copied aside
            shutil.rmtree(folder)
        os.replace(chosen, folder)
        _fsync_dir(folder.parent)
    for twin in _twins(folder):
        if twin.exists():
            shutil.rmtree(twin)
    return folder


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run dir, a checkpoints/ dir or a checkpoint folder -> the checkpoint folder to load."""
    p = Path(path)
    for candidate in (p, p / "checkpoints" / "last", p / "last"):
        found = find_checkpoint(candidate)
        if found is not None:
            return found
    if not p.exists():
        raise UserError(f"No checkpoint at '{p}': the path does not exist; pass a run dir or its checkpoints/last folder.")
    raise UserError(f"'{p}' is not a gan_platform checkpoint (no complete checkpoints/last with meta.json): pass a run dir of this platform.")


class CorruptCheckpoint(UserError):
    """A checkpoint folder whose files fail verification (SHA-256, unpickling, contents); with
    trainer.resume=auto an older complete checkpoint can take its place (`load_for_resume`)."""

    def __init__(self, path: Path, reason: str, fix: str):
        self.path, self.reason = path, reason
        super().__init__(f"Checkpoint '{path}' {reason}: {fix}.")


def verify_checkpoint(folder: Path, map_location: Any = "cpu") -> tuple[dict[str, Any], dict]:
    """(state, meta) of exactly this checkpoint folder (no twins), verified against its SHA-256."""
    meta = read_meta(folder)
    if meta is None:
        raise CorruptCheckpoint(folder, "has no readable meta.json (cut short or corrupt)", "it is not a complete gan_platform checkpoint")
    state_path = folder / STATE_FILE
    if meta["version"] > VERSION:
        raise UserError(f"Checkpoint '{folder}' was written by a newer gan_platform (format {meta['version']}): upgrade gan_platform.")
    if not isinstance(meta.get("sha256"), str):
        raise CorruptCheckpoint(folder, "has no SHA-256 in its meta.json, so it cannot be verified",
                                "it is not a complete gan_platform checkpoint")
    if file_sha256(state_path) != meta["sha256"]:
        raise CorruptCheckpoint(state_path, "is truncated or corrupt (its SHA-256 does not match meta.json)",
                                "resume from another checkpoint")
    try:
        state = torch.load(state_path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a safe checkpoint"
        raise CorruptCheckpoint(state_path, f"could not be loaded safely ({type(e).__name__})",
                                "it is not a gan_platform checkpoint") from e
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        raise CorruptCheckpoint(state_path, f"does not hold a gan_platform training state (no {', '.join(STATE_KEYS)})",
                                "pass a checkpoint written by this platform")
    return state, meta


def load_checkpoint(folder: str | os.PathLike, map_location: Any = "cpu") -> tuple[dict[str, Any], dict]:
    """(state, meta) of a run dir, checkpoints/ dir or checkpoint folder (`resolve_checkpoint`),
    verified against its recorded SHA-256; no fallback: a bad file is a UserError."""
    return verify_checkpoint(resolve_checkpoint(folder), map_location)


# -- trainer.resume=auto: the newest checkpoint that verifies ---------------------------------------

@dataclass
class Resumable:
    """What `load_for_resume` found: the folder loaded, its state and meta, and the newer folders
    that failed verification on the way (each with its CorruptCheckpoint)."""
    folder: Path
    state: dict[str, Any]
    meta: dict
    rejected: list[CorruptCheckpoint] = field(default_factory=list)


def _family(folder: Path) -> tuple[Path, Path, Path]:
    return (folder, *_twins(folder))


def load_for_resume(checkpoints_dir: str | os.PathLike, map_location: Any = "cpu") -> Optional[Resumable]:
    """trainer.resume=auto: checkpoints/last as `find_checkpoint` picks it, verified. When that one
    fails verification (or last/ is there without a readable meta.json), the newest of last's other
    twins and checkpoints/best (and its twins) that verifies; best holds a full training state too.
    None when there is no last at all (a fresh start); the first failure's one sentence when nothing
    verifies. Reads only: `settle_resumed` moves the bad folders aside once every process has loaded."""
    last, best = Path(checkpoints_dir) / "last", Path(checkpoints_dir) / "best"
    rejected = [CorruptCheckpoint(f, "has no readable meta.json (cut short or corrupt)", "it is not a complete gan_platform checkpoint")
                for f in (last, _twins(last)[1]) if f.exists() and read_meta(f) is None]  # only .tmp is ever half-written
    primary = find_checkpoint(last)
    if primary is None and not rejected:
        return None
    steps = {f: meta["step"] for f in (*_family(last), *_family(best)) if f != primary and (meta := read_meta(f))}
    for folder in ([primary] if primary else []) + sorted(steps, key=lambda f: -steps[f]):  # last's twins first on a tie
        try:
            return Resumable(folder, *verify_checkpoint(folder, map_location), rejected)
        except CorruptCheckpoint as e:
            rejected.append(e)
    raise rejected[0]


def _aside(folder: Path) -> Path:
    """NAME.corrupt-N beside `folder` (NAME without .prev/.tmp), N the first number not taken."""
    base, n = folder.name.split(".")[0], 1
    while folder.with_name(f"{base}.corrupt-{n}").exists():
        n += 1
    return folder.with_name(f"{base}.corrupt-{n}")


def settle_resumed(checkpoints_dir: str | os.PathLike, resumed: Resumable) -> Path:
    """After every process has loaded `resumed`: move each folder that failed verification aside to
    NAME.corrupt-N (nothing is deleted) with a warning naming it and the step resumed from; put the
    resumed checkpoint at checkpoints/last (a copy when it is best's) and clear last's twins."""
    last = Path(checkpoints_dir) / "last"
    if not resumed.rejected:
        return settle_checkpoint(last) or last
    step = resumed.meta["step"]
    for error in resumed.rejected:
        folder = error.path if error.path.is_dir() else error.path.parent
        if folder.exists():
            aside = _aside(folder)
            os.replace(folder, aside)
            log.warning("Checkpoint '%s' %s: moved it aside to '%s' and resumed from '%s' at step %d.",
                        error.path, error.reason, aside, resumed.folder, step)
    chosen = resumed.folder
    if chosen not in _family(last):  # best's: a copy, so that best stays as it is
        tmp = _twins(last)[0]
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(chosen, tmp)
        settle_checkpoint(chosen.with_name("best"))
        chosen = tmp
    return _put_in_place(chosen, last)  # the newer bad ones are aside already
