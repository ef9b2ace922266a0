"""`dataset=hf`: a Hugging Face `datasets` dataset saved with `save_to_disk`, read offline.

    python -m gan_platform dataset=hf dataset.path=cifar10_hf dataset.image_column=img      # labels: "label"
    python -m gan_platform dataset=hf dataset.path=celeba_hf dataset.split=train dataset.label_column=null

`load_from_disk` memory-maps the saved Arrow files; nothing is downloaded. A saved `DatasetDict`
is read at `split`. The image column must be an `Image` feature (encoded bytes, or a path to a
file); its images are decoded by the readers of packed sets (readers.py), so the options are
`dataset=zip`'s: `resolution`, `channels`, `mirror`, `on_corrupt`, `stream`, `workers`. The
label column may be a `ClassLabel` (its names are kept) or whole numbers; `label_column: auto`
takes a column named "label" where there is one, and none otherwise. The content SHA-256 the
evaluation records is that of the split's Arrow files, in order.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from gan_platform.data.readers import EncodedReader
from gan_platform.errors import ConfigError, UserError


def config_key(name: str) -> str:
    """How an error names an option of `dataset=hf` (gan-dataset names its own: `--split`, ...)."""
    return "dataset.label_column=null" if name == "unlabelled" else f"dataset.{name}"


def load_split(path: str | Path, split: Optional[str], key: Callable[[str], str] = config_key) -> tuple[Any, Optional[str]]:
    """(the saved `Dataset` at `path`, the split read: a `DatasetDict`'s `split`, None for a saved
    `Dataset`), or one sentence."""
    from datasets import DatasetDict, load_from_disk

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UserError(f"The Hugging Face dataset folder '{folder}' does not exist: save one there with "
                        "dataset.save_to_disk(PATH), or point at the folder that holds it.")
    try:
        loaded = load_from_disk(str(folder))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise UserError(f"'{folder}' is not a dataset saved with save_to_disk ({str(e).splitlines()[0]}): save it "
                        "with dataset.save_to_disk(PATH) and point at that folder.") from e
    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise ConfigError(f"The Hugging Face dataset '{folder}' has the splits {', '.join(loaded)}, not '{split}': "
                              f"set {key('split')} to one of them.")
        return loaded[split], split
    return loaded, None


def check_image_column(ds: Any, column: str, where: str, key: Callable[[str], str] = config_key) -> str:
    """`column` when it is an Image feature of `ds`, or one sentence naming the columns."""
    from datasets import Image

    if column not in ds.column_names:
        raise ConfigError(f"The Hugging Face dataset {where} has no column '{column}': its columns are "
                          f"{', '.join(ds.column_names)}; set {key('image_column')} to the column of images.")
    if not isinstance(ds.features[column], Image):
        raise ConfigError(f"The column '{column}' of {where} holds {type(ds.features[column]).__name__} values, not "
                          f"images (an Image feature): set {key('image_column')} to the column of images.")
    return column


def labels_of(ds: Any, column: Optional[str], where: str,
              key: Callable[[str], str] = config_key) -> tuple[Optional[list[int]], Optional[list[str]]]:
    """(labels, class names) from `column` ("auto": "label" where present; None: unlabelled)."""
    from datasets import ClassLabel, Value

    if column == "auto":
        column = "label" if "label" in ds.column_names else None
    if column is None:
        return None, None
    if column not in ds.column_names:
        raise ConfigError(f"The Hugging Face dataset {where} has no column '{column}': its columns are "
                          f"{', '.join(ds.column_names)}; set {key('label_column')} to the label column, or read "
                          f"the set unlabelled ({key('unlabelled')}).")
    feature = ds.features[column]
    if not (isinstance(feature, ClassLabel) or (isinstance(feature, Value) and "int" in feature.dtype)):
        raise ConfigError(f"The column '{column}' of {where} holds {feature}, not class labels (a ClassLabel or whole "
                          f"numbers): set {key('label_column')} to the label column, or read the set unlabelled "
                          f"({key('unlabelled')}).")
    labels = np.asarray(ds.data.column(column).to_numpy(zero_copy_only=False), dtype=np.int64)
    names = list(feature.names) if isinstance(feature, ClassLabel) else None
    bad = np.flatnonzero((labels < 0) | (labels >= len(names) if names else labels < 0))
    if len(bad):
        raise UserError(f"Row {int(bad[0])} of {where} has the label {int(labels[bad[0]])}, outside the classes "
                        f"(-1 is a ClassLabel's 'no label'): drop such rows before saving, or read the set unlabelled "
                        f"({key('unlabelled')}).")
    return labels.tolist(), names


def encoded(value: Optional[dict[str, Any]]) -> Optional[bytes]:
    """An Image feature's stored value ({"bytes", "path"}) as encoded bytes; None where there are none."""
    if not value:
        return None
    if value.get("bytes"):
        return value["bytes"]
    path = value.get("path")
    try:
        return Path(path).read_bytes() if path else None
    except OSError:
        return None


def iter_encoded(ds: Any, column: str) -> Iterator[Optional[bytes]]:
    """Every row's encoded image, in order, chunk by chunk of the Arrow table (fast)."""
    for chunk in ds.data.column(column).chunks:
        for value in chunk.to_pylist():
            yield encoded(value)


class HFReader(EncodedReader):
    """The images of a saved Hugging Face dataset by row; each process loads it (memory-mapped) itself."""

    def __init__(self, path: str, split: Optional[str], column: str, count: int, resolution: int, channels: int):
        self.path, self.split, self.column, self.count = str(path), split, column, int(count)
        self.resolution, self.channels = int(resolution), int(channels)
        self._column: Any = None

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_column": None}

    def member(self, i: int) -> Optional[bytes]:
        """Row i's encoded image bytes, or None."""
        if self._column is None:
            self._column = load_split(self.path, self.split)[0].data.column(self.column)
        return encoded(self._column[i].as_py())

    def where(self, i: int) -> str:
        return f"row {i} of the Hugging Face dataset '{self.path}'"


def arrow_sha256(ds: Any) -> str:
    """SHA-256 of the split's Arrow files, in order: the saved data, every column."""
    h = hashlib.sha256()
    for entry in ds.cache_files:
        with open(entry["filename"], "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def hf_dataset(path: Optional[str] = None, split: Optional[str] = "train", image_column: str = "image",
               label_column: Optional[str] = "auto", resolution: Optional[int] = None, channels: Optional[int] = None,
               mirror: bool = False, on_corrupt: str = "skip", stream: Any = "auto", stream_above_mb: float = 2048.0,
               workers: int = 4):
    """The saved Hugging Face dataset at `path` (see the module docstring)."""
    from gan_platform.data.packed.build import PackedSource, check_options, first_readable, packed_dataset, stored_form

    if not path:
        raise ConfigError("dataset.path is not set: add dataset.path=FOLDER, a dataset saved with save_to_disk.")
    check_options(resolution, channels, stream, stream_above_mb)
    ds, split = load_split(path, split)
    where = f"'{path}'" + (f" (split {split})" if split else "")
    column = check_image_column(ds, image_column, where)
    labels, names = labels_of(ds, label_column, where)
    if len(ds) == 0:
        raise UserError(f"The Hugging Face dataset {where} has no rows: save one that holds images.")
    first = first_readable(lambda r, c: HFReader(path, split, column, len(ds), r, c), len(ds), where)
    res, ch = stored_form(first, resolution, channels, where)
    num_classes = (len(names) if names else max(labels) + 1) if labels is not None else None
    fields = {"dataset_file": Path(path).name, **({"dataset_split": split} if split else {})}
    source = PackedSource(fields, lambda: arrow_sha256(ds))
    return packed_dataset(Path(path).name, HFReader(path, split, column, len(ds), res, ch), labels, num_classes, names,
                          source, mirror=bool(mirror), on_corrupt=on_corrupt, stream=stream,
                          stream_above_mb=float(stream_above_mb), workers=workers)
