"""The run dir: the files a run leaves behind, which tools and tests rely on.

    <run_dir>/.hydra/config.yaml   the composed config (written by Hydra)
    metrics.jsonl                  one JSON object per log or eval step: {"step": n, "train/d_loss": ...}
    summary.json                   status, final and best values, the metric protocol
    samples/step_000500.png/.pt    sample grids and the raw samples behind them
    checkpoints/last/, best/       see `checkpoint.py`
    report.html                    the dashboard

Only the main process writes. Every file that is replaced is replaced atomically (write a temp
file, fsync, rename), so a killed run never leaves a half-written summary. While a run trains, its
main process holds an advisory lock on ``<run_dir>/.lock`` (released by the kernel when the process
dies, even by SIGKILL), so that a second process never writes into a live run's dir.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterator, Optional

try:
    import fcntl
except ImportError:  # not POSIX: no run-dir lock
    fcntl = None

from gan_platform.errors import UserError

_held_locks: dict[Path, int] = {}  # run dirs this process holds: re-entrant within one process


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: write them as strings so the file stays parseable everywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(_json_safe(obj), indent=2, sort_keys=False) + "\n").encode())


def read_metrics(path: Path) -> Iterator[dict]:
    """The records of a metrics.jsonl file; a torn last line (a killed write) is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


class RunDir:
    """Paths and writers of one run dir."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    def sample_path(self, step: int, suffix: str) -> Path:
        return self.samples_dir / f"step_{step:06d}{suffix}"

    def append_metrics(self, record: dict[str, Any]) -> None:
        """Append one JSON line (flushed at once, so a killed run keeps what it logged)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(_json_safe(record)) + "\n")
            f.flush()

    def truncate_metrics(self, last_step: int, records: Optional[int] = None) -> int:
        """Cut metrics.jsonl back to what it held when the checkpoint at `last_step` was written: its
        first `records` records (the count the checkpoint keeps; all of them for a checkpoint without
        it) of step <= last_step (the records of an older checkpoint, e.g. best/, may have been
        rewritten since); a torn line is dropped. Used when a run resumes, so that whatever was
        logged after the checkpoint is logged once, not twice. Returns the number of records kept."""
        if not self.metrics_path.exists():
            return 0
        kept = list(read_metrics(self.metrics_path))[:records]
        kept = [r for r in kept if r.get("step", 0) <= last_step]
        atomic_write_bytes(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept).encode())
        return len(kept)

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    def lock(self) -> None:
        """Claim the run dir for this process, or raise a UserError naming the process that holds it."""
        key = self.root.resolve()
        if fcntl is None or key in _held_locks:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(f"Run dir '{self.root}' is in use by another running process (pid {holder}): "
                            "wait for it or stop it, or start a separate run without trainer.resume.") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _held_locks[key] = fd

    def unlock(self) -> None:
        fd = _held_locks.pop(self.root.resolve(), None)
        if fd is not None:
            os.close(fd)

    def in_use(self) -> Optional[bool]:
        """True if another live process holds this run dir (None where locks are not available)."""
        if fcntl is None or not self.lock_path.exists():
            return None if fcntl is None else False
        if self.root.resolve() in _held_locks:
            return False
        fd = os.open(self.lock_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def read_summary(self) -> dict[str, Any]:
        if not self.summary_path.exists():
            return {}
        try:
            return json.loads(self.summary_path.read_text())
        except json.JSONDecodeError:
            return {}

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.summary_path, summary)
