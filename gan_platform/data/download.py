"""Download one of CycleGAN's public unpaired sets into CycleGAN's folder layout.

    python -m gan_platform.data.download horse2zebra            # -> datasets/horse2zebra/{trainA,trainB,testA,testB}
    python -m gan_platform.data.download monet2photo --root data

Training never downloads; this is the one explicit step before `+experiment=horse2zebra`. The zip
is fetched to ROOT/NAME.zip.part, renamed when complete, unpacked into ROOT and checked for
trainA/ and trainB/. `--url` points at a mirror (any URL urllib opens, file:// included).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

from gan_platform.errors import UserError, report_and_exit

BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
SETS = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo", "ukiyoe2photo",
        "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower")


def download_set(name: str, root: str | Path = "datasets", url: Optional[str] = None) -> Path:
    """Fetch and unpack set `name` into ROOT/NAME; returns that folder (kept if already there)."""
    if url is None and name not in SETS:
        raise UserError(f"Unknown CycleGAN set '{name}': choose one of {', '.join(SETS)}, or pass --url.")
    root = Path(root)
    target = root / name
    if (target / "trainA").is_dir() and (target / "trainB").is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    archive, part = root / f"{name}.zip", root / f"{name}.zip.part"
    source = url or f"{BASE_URL}/{name}.zip"
    try:
        with urllib.request.urlopen(source) as response, open(part, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    f.write(block)
                    bar.update(len(block))
    except OSError as e:
        part.unlink(missing_ok=True)
        raise UserError(f"Could not download {source} ({e}): check the network or pass --url to a mirror.") from e
    part.replace(archive)
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(root)
    except zipfile.BadZipFile as e:
        raise UserError(f"'{archive}' is not a zip file: delete it and download again.") from e
    archive.unlink()
    if not ((target / "trainA").is_dir() and (target / "trainB").is_dir()):
        raise UserError(f"The archive did not unpack to {target}/trainA and trainB: unpack it by hand into that layout.")
    shutil.rmtree(root / "__MACOSX", ignore_errors=True)
    return target


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_platform.data.download", description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"one of {', '.join(SETS)}")
    parser.add_argument("--root", default="datasets", help="folder the set goes into (default: datasets)")
    parser.add_argument("--url", default=None, help="download from this URL instead")
    args = parser.parse_args(argv)
    try:
        folder = download_set(args.name, args.root, args.url)
    except UserError as e:
        report_and_exit(e)
    counts = {d.name: sum(1 for _ in d.iterdir()) for d in sorted(folder.iterdir()) if d.is_dir()}
    print(f"{folder}: " + ", ".join(f"{k} {v} files" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
