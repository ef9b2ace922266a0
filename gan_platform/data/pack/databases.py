"""What `gan-dataset` reads from databases: an LSUN-style LMDB and a saved Hugging Face dataset.

    an LMDB            a folder holding data.mdb (LSUN's *_lmdb folders) or the data.mdb file: every value is
                       an encoded image (LSUN's are WebP), in key order, unlabelled; named 00000/img00000000.png ...
    a HF dataset       a folder written by save_to_disk (a Dataset, or a DatasetDict read at --split); the images
                       of --image-column, labels from --label-column (auto: "label" where present)

Both hand the encoded bytes on; the workers decode them like any other image (transform.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from gan_platform.data.pack.sources import Item, Source, index_name
from gan_platform.errors import UserError


def open_lmdb(path: Path) -> Source:
    """An LMDB of encoded images (see the module docstring), or one sentence when it is not one."""
    import lmdb

    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, subdir=path.is_dir())
        with env.begin() as txn:
            count = int(txn.stat()["entries"])
    except lmdb.Error as e:
        raise UserError(f"'{path}' is not an LMDB database ({type(e).__name__}: {str(e).strip()}): point SOURCE at an "
                        "LSUN *_lmdb folder (it holds data.mdb), or pass --source-format for what it is.") from e

    def items() -> Iterator[Item]:
        with env.begin(buffers=False) as txn:
            for i, (key, value) in enumerate(txn.cursor()):
                yield Item(f"the value of key {key[:40]!r} in '{path}'", bytes(value), None, index_name(i))

    return Source("lmdb", count, items, False)


def hf_option(name: str) -> str:
    """How gan-dataset's errors name the options the HF readers share with dataset=hf."""
    return "--no-labels" if name == "unlabelled" else "--" + name.replace("_", "-")


def open_hf(path: Path, split: str, image_column: str, label_column: Optional[str], labelled: bool) -> Source:
    """A saved Hugging Face dataset (see the module docstring)."""
    from gan_platform.data.packed.hf import check_image_column, iter_encoded, labels_of, load_split

    ds, split_read = load_split(path, split, hf_option)
    where = f"'{path}'" + (f" (split {split_read})" if split_read else "")
    column = check_image_column(ds, image_column, where, hf_option)
    labels, names = labels_of(ds, label_column if labelled else None, where, hf_option)

    def items() -> Iterator[Item]:
        for i, data in enumerate(iter_encoded(ds, column)):
            yield Item(f"row {i} of {where}", data, labels[i] if labels is not None else None, index_name(i))

    return Source("hf", len(ds), items, labels is not None, names)
