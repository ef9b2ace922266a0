"""What the earlier parts of a resumed offline W&B run already hold, and the command that uploads them.

A run resumed with `trainer.resume=auto` keeps its W&B run id; offline, each part is another
`<run_dir>/wandb/offline-run-<time>-<id>/run-<id>.wandb`. wandb's own `wandb sync` (0.31) groups
the files it is given by run and uploads those of one run one after another, in the order they
started, into that one run: `sync_command` is that command for a run dir. For the run to hold
every step once, a part must not log again a step an earlier part already wrote (a kill after the
last checkpoint makes the resumed part repeat what came after it): `logged_through` reads the
earlier parts' files for the last step they hold.

A kill -9 also takes what W&B's service had not yet written: a killed part can end inside a record,
or hold nothing but the file header (no run record). wandb-core's sync stops at a record cut short
and cannot place a file without a run record, so `settle_parts` cuts a killed part back to its last
whole record and renames a part without a run record to `run-<id>.wandb.incomplete` (nothing in
it can be uploaded), before the resumed part starts.

The file is a LevelDB-style log (a 7-byte header ":W&B" + magic + version, then 32 KiB blocks of
records, each with a 7-byte header: CRC, length, type full/first/middle/last) of protobuf
`Record`s from `wandb.proto.wandb_internal_pb2`; a record cut short by a kill ends the reading.
"""

from __future__ import annotations

import json
import shlex
import struct
from pathlib import Path
from typing import Iterator, Optional

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def payloads(data: bytes, ends: Optional[list[int]] = None) -> Iterator[bytes]:
    """The records' bytes; `ends` (if given) gets the offset just past each whole record."""
    if data[:4] != b":W&B":
        return
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's trailing padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        if pos + HEADER + length > len(data):  # a record cut short
            return
        chunk = data[pos + HEADER:pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST) and ends is not None:
            ends.append(pos)
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


def history_steps(path: Path) -> list[int]:
    """The `_step` of every history row in one `.wandb` file, in file order."""
    from wandb.proto import wandb_internal_pb2 as pb

    steps = []
    for payload in payloads(Path(path).read_bytes()):
        record = pb.Record()
        try:
            record.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - a damaged record: what came before it stands
            break
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                if (item.key or "/".join(item.nested_key)) == "_step":
                    steps.append(int(json.loads(item.value_json)))
    return steps


def settle_parts(wandb_dir: Path, run_id: str) -> list[str]:
    """Make the parts of run `run_id` under `wandb_dir` uploadable (see the module docstring);
    returns one line for each part changed."""
    from wandb.proto import wandb_internal_pb2 as pb

    done = []
    for path in run_files(wandb_dir, run_id):
        data, ends, has_run = path.read_bytes(), [], False
        for payload in payloads(data, ends):
            record = pb.Record()
            try:
                record.ParseFromString(payload)
            except Exception:  # noqa: BLE001 - a damaged record: treated as the end
                break
            has_run = has_run or record.WhichOneof("record_type") == "run"
        if not has_run:
            path.rename(path.with_name(path.name + ".incomplete"))
            done.append(f"{path} holds no run record (killed before W&B wrote it): renamed to {path.name}.incomplete")
        elif ends and ends[-1] < len(data) and any(data[ends[-1]:]):
            with open(path, "r+b") as f:
                f.truncate(ends[-1])
            done.append(f"{path} ended inside a record (killed while W&B wrote it): cut back to its last whole record")
    return done


def run_files(wandb_dir: Path, run_id: str) -> list[Path]:
    """The `.wandb` files of run `run_id` under `wandb_dir`, oldest first."""
    return sorted(Path(wandb_dir).glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))


def logged_through(wandb_dir: Path, run_id: str) -> Optional[int]:
    """The last step the offline parts of run `run_id` under `wandb_dir` hold; None if none."""
    steps = [s for f in run_files(wandb_dir, run_id) for s in history_steps(f)]
    return max(steps) if steps else None


def sync_command(wandb_dir: Path) -> str:
    """The command that uploads every offline part of the run(s) under `wandb_dir` (a run dir's
    `wandb/`) as one W&B run per run id, each part once, in the order the parts started."""
    return f"wandb sync {shlex.quote(str(wandb_dir))}"
