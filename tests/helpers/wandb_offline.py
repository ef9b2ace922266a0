"""Read what a W&B offline run recorded, from its `run-<id>.wandb` file.

wandb has no public reader for offline runs; the file is a LevelDB-style log (a 7-byte header
":W&B" + magic + version, then 32 KiB blocks of records, each with a 7-byte header: CRC, length,
type full/first/middle/last) of protobuf `Record`s from `wandb.proto.wandb_internal_pb2`; the framing is
read by the tests' own reader (wandb_log.py), which checks every record's CRC-32 and the block
layout, independently of the platform's `gan_platform.tracking.wandb_files.payloads`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

from helpers.wandb_log import records


def _payloads(path: Path) -> Iterator[bytes]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    yield from records(data, allow_cut=True)  # W&B's service may still be writing the end


def _items(items) -> dict[str, Any]:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def read_run(path: Path, wait_s: float = 60.0) -> dict[str, Any]:
    """{"run": the run record, "config": {...}, "history": [rows], "summary": {...}, "metrics": [metric records],
    "artifacts": [{"name", "type", "files": {path in the artifact: local staged file}}], "exit_code": int}.

    W&B's service writes the file on its own schedule: `run.finish()` can return before the last
    records reach the disk, so this waits (up to `wait_s`) for the run's exit record.
    """
    deadline = time.monotonic() + wait_s
    while True:
        out = _read(path)
        if out["exit_code"] is not None or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def _read(path: Path) -> dict[str, Any]:
    from wandb.proto import wandb_internal_pb2 as pb

    out: dict[str, Any] = {"run": None, "config": {}, "history": [], "summary": {}, "metrics": [], "artifacts": [], "exit_code": None}
    for payload in _payloads(path):
        record = pb.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
        elif kind == "config":
            out["config"].update(_items(record.config.update))
        elif kind == "history":
            out["history"].append(_items(record.history.item))
        elif kind == "summary":
            out["summary"].update(_items(record.summary.update))
        elif kind == "metric":
            out["metrics"].append(record.metric)
        elif kind == "artifact":  # a logged wandb.Table travels as an artifact, staged on disk until synced
            a = record.artifact
            out["artifacts"].append({"name": a.name, "type": a.type,
                                     "files": {c.path: c.local_path for c in a.manifest.contents}})
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


def offline_runs(run_dir: Path) -> list[Path]:
    """The `run-<id>.wandb` files of a run dir, oldest first."""
    return sorted((Path(run_dir) / "wandb").glob("offline-run-*/run-*.wandb"))
