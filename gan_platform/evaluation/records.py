"""The files an evaluation leaves behind (`gan_platform.evaluate`), never one over another.

    eval_<name>.json                     the numbers (mean, std and every set's value), the protocol,
                                         FD at infinity's points and the nearest neighbours found
    eval_<name>_nearest_neighbours.png   memorisation: generated samples beside their nearest
                                         training images, by features and by pixels, with distances

<name> is `--name`, else CHECKPOINT_NETWORK_N for a generator (last_generator_ema_10000) or
fake_<set>_N for an image set. An evaluation never replaces an earlier one: a default name that is
taken gets the next free suffix (_2, _3, ...), and an explicit `--name` that is taken is refused
before any work. Each file is written under a temporary name, then linked into place, which fails
rather than overwrite a file another process wrote meanwhile.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

from gan_platform.errors import UserError

PICTURE_SUFFIX = "_nearest_neighbours.png"


def record_path(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / f"eval_{name}.json"


def check_name_free(out_dir: Path, name: str) -> None:
    """One sentence, before any work, when `--name` would replace an earlier evaluation."""
    if record_path(out_dir, name).exists() or (Path(out_dir) / f"eval_{name}{PICTURE_SUFFIX}").exists():
        raise UserError(f"{record_path(out_dir, name)} already exists and an evaluation never replaces another: "
                        "pass a new --name, or leave --name out for a fresh numbered file.")


def _free_names(out_dir: Path, name: str):
    """name, name_2, name_3, ...: every candidate whose files are all absent."""
    n = 1
    while True:
        candidate = name if n == 1 else f"{name}_{n}"
        if not record_path(out_dir, candidate).exists() and not (out_dir / f"eval_{candidate}{PICTURE_SUFFIX}").exists():
            yield candidate
        n += 1


def _place(path: Path, data: bytes) -> None:
    """`data` at `path`, which must not exist: a temporary file linked into place (fails, never overwrites)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_record(out_dir: Path, name: str, explicit: bool, report: dict[str, Any],
                 picture_png: Optional[bytes] = None) -> tuple[Path, Optional[Path]]:
    """Write eval_<name>.json (and its picture, named in the report) under the first free name;
    an explicit name must still be free. Returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = iter([name]) if explicit else _free_names(out_dir, name)
    for candidate in names:
        picture = out_dir / f"eval_{candidate}{PICTURE_SUFFIX}" if picture_png is not None else None
        if picture is not None:
            report.setdefault("nearest_neighbours", {})["picture"] = picture.name
        placed: list[Path] = []
        try:
            if picture is not None:
                _place(picture, picture_png)
                placed.append(picture)
            _place(record_path(out_dir, candidate), (json.dumps(_json_safe(report), indent=2) + "\n").encode())
            return record_path(out_dir, candidate), picture
        except FileExistsError:  # another evaluation took the name meanwhile
            for path in placed:
                path.unlink(missing_ok=True)
            if explicit:
                check_name_free(out_dir, candidate)
    raise AssertionError("unreachable")  # pragma: no cover - the names never run out


def _json_safe(value: Any) -> Any:
    """NaN and inf as strings, so the file stays JSON everywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
