"""Checkpoints: written atomically, loaded safely.

A checkpoint is a folder holding ``state.pt`` (everything the run needs to continue: networks,
optimizers, schedulers, counters, RNG states) and ``meta.json`` (format, step, the SHA-256 of
state.pt), written last. Saving writes ``NAME.tmp/`` in full, fsyncs it, moves the old ``NAME/``
aside to ``NAME.prev/``, renames the new one into place and deletes the old one; a kill at any
moment leaves either ``NAME/`` or ``NAME.prev/`` complete, and `find_checkpoint` picks it.

Loading uses ``torch.load(weights_only=True)``: a checkpoint cannot run code. A folder or file that
is not a checkpoint of this platform, or one cut short, is refused with one sentence.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

import torch

from gan_platform.errors import UserError
from gan_platform.rundir import atomic_write_json

FORMAT = "gan_platform.checkpoint"
VERSION = 1
STATE_FILE = "state.pt"
META_FILE = "meta.json"


def _sha256(path: Path) -> str:
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


def save_checkpoint(folder: str | os.PathLike, state: dict[str, Any], step: int, extra_meta: Optional[dict] = None) -> Path:
    """Write `state` as checkpoint folder `folder` atomically; returns the folder."""
    final = Path(folder)
    tmp, prev = final.with_name(final.name + ".tmp"), final.with_name(final.name + ".prev")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    state_path = tmp / STATE_FILE
    with open(state_path, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    meta = {"format": FORMAT, "version": VERSION, "step": int(step), "sha256": _sha256(state_path), **(extra_meta or {})}
    atomic_write_json(tmp / META_FILE, meta)
    _fsync_dir(tmp)
    if final.exists():
        if prev.exists():
            shutil.rmtree(prev)
        os.replace(final, prev)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if prev.exists():
        shutil.rmtree(prev)
    return final


def read_meta(folder: Path) -> Optional[dict]:
    """The meta.json of a complete checkpoint folder, or None."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not (folder / STATE_FILE).exists():
        return None
    return meta


def find_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    """The complete checkpoint at `folder` (e.g. checkpoints/last), or its `.prev` twin left by a
    save that was killed between two renames; None if neither is complete."""
    folder = Path(folder)
    for candidate in (folder, folder.with_name(folder.name + ".prev")):
        if read_meta(candidate) is not None:
            return candidate
    return None


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


def load_checkpoint(folder: str | os.PathLike, map_location: Any = "cpu") -> tuple[dict[str, Any], dict]:
    """(state, meta) of a checkpoint folder, verified against its recorded SHA-256."""
    folder = resolve_checkpoint(folder)
    meta = read_meta(folder)
    assert meta is not None
    state_path = folder / STATE_FILE
    if meta.get("sha256") and _sha256(state_path) != meta["sha256"]:
        raise UserError(f"Checkpoint '{state_path}' is truncated or corrupt (its SHA-256 does not match meta.json): resume from another checkpoint.")
    if meta.get("version", 0) > VERSION:
        raise UserError(f"Checkpoint '{folder}' was written by a newer gan_platform (format {meta['version']}): upgrade gan_platform.")
    try:
        state = torch.load(state_path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a safe checkpoint"
        raise UserError(f"Checkpoint '{state_path}' could not be loaded safely ({type(e).__name__}): it is not a gan_platform checkpoint.") from e
    return state, meta
