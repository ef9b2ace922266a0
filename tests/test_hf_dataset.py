"""dataset=hf: a Hugging Face dataset saved with save_to_disk (made here, offline) trains with its
images, labels and class names, in memory or streamed with the same batches, a DatasetDict at its
split; wrong columns and splits are one sentence; its Arrow files' SHA-256 names it in the protocol."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from helpers.dataset_sources import make_hf

pytest.importorskip("datasets")

from gan_platform.data.packed.hf import hf_dataset  # noqa: E402
from gan_platform.data.streaming import StreamingImages  # noqa: E402
from gan_platform.errors import ConfigError, UserError  # noqa: E402


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return root, make_hf(root / "dict", splits=True), make_hf(root / "one", splits=False, column="img")


def test_a_split_trains_with_its_images_labels_and_class_names(saved):
    root, made, _ = saved
    ds = hf_dataset(str(root / "dict"), split="test", workers=0)
    arrays, labels = made["test"]
    assert torch.equal(ds.x, torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2))
    assert ds.labels.tolist() == labels and ds.class_names == ["ant", "bee", "cow"] and ds.num_classes == 3
    protocol = ds.protocol()
    arrow = sorted((root / "dict" / "test").glob("*.arrow"))
    assert protocol["dataset_split"] == "test" and protocol["dataset_file"] == "dict"
    assert protocol["dataset_sha256"] == hashlib.sha256(b"".join(p.read_bytes() for p in arrow)).hexdigest()


def test_streamed_rows_give_the_in_memory_batches_mirrored_too(saved):
    root = saved[0]
    memory = hf_dataset(str(root / "dict"), mirror=True, workers=0)
    streamed = hf_dataset(str(root / "dict"), mirror=True, stream=True, workers=2)
    assert isinstance(streamed, StreamingImages) and streamed.pool_size == 12
    ga, gb = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    for n in (5, 5, 3):
        (xa, ya), (xb, yb) = memory.sample(n, ga), streamed.sample(n, gb)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_a_saved_dataset_without_splits_and_named_columns(saved):
    root, _, made = saved
    ds = hf_dataset(str(root / "one"), image_column="img", label_column=None, workers=0)
    assert not ds.labelled and torch.equal(ds.x[0], torch.from_numpy(made["train"][0][0]).permute(2, 0, 1))
    assert "dataset_split" not in ds.protocol()


@pytest.mark.parametrize("kwargs, error, fragment", [
    ({"split": "validation"}, ConfigError, "has the splits train, test, not 'validation': set dataset.split"),
    ({"image_column": "img"}, ConfigError, "has no column 'img': its columns are image, label; set dataset.image_column"),
    ({"image_column": "label"}, ConfigError, "holds ClassLabel values, not images"),
    ({"label_column": "class"}, ConfigError, "has no column 'class'"),
    ({"path": "nowhere"}, UserError, "does not exist: save one there with dataset.save_to_disk"),
])
def test_wrong_splits_columns_and_folders_are_one_sentence(saved, kwargs, error, fragment):
    root = saved[0]
    kwargs = {**kwargs, "path": str(root / kwargs.get("path", "dict"))}
    with pytest.raises(error, match=None) as e:
        hf_dataset(workers=0, **kwargs)
    assert fragment in str(e.value), str(e.value)
