"""dataset=zip: a packed zip trains in memory or streamed with the same batches, mirrors by x-flips as
stylegan2-ada's --mirror does, shards per process, resumes exactly, names its content SHA-256 in the
evaluation's protocol and cache key, and refuses each bad zip in one sentence."""

from __future__ import annotations

import json
import warnings
import zipfile

import numpy as np
import pytest
import torch

from helpers import TINY, run_cli, train
from helpers.dataset_sources import pixels, write_stylegan_zip
from gan_platform.data.base import TensorDataset
from gan_platform.data.packed.build import zip_dataset
from gan_platform.data.packed.png import encode_plain
from gan_platform.data.streaming import StreamingImages
from gan_platform.errors import ConfigError, UserError
from gan_platform.runs.checkpoint import load_checkpoint


def write_zip(path, arrays, labels=None, class_names=None, names=None, extra=None):
    """A zip of plain PNGs with dataset.json (gan-dataset's layout), built by hand so each field can be wrong."""
    names = names or [f"{i // 1000:05d}/img{i:08d}.png" for i in range(len(arrays))]
    with zipfile.ZipFile(path, "w") as z:
        for name, arr in zip(names, arrays):
            z.writestr(name, encode_plain(arr))
        meta = {"labels": [[n, l] for n, l in zip(names, labels)] if labels is not None else None,
                **({"class_names": class_names} if class_names else {}), **(extra or {})}
        z.writestr("dataset.json", json.dumps(meta))
    return path


@pytest.fixture
def packed(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [pixels(rng, 8, 8) for _ in range(10)]
    labels = [i % 3 for i in range(10)]
    return write_zip(tmp_path / "set.zip", arrays, labels, ["a", "b", "c"]), np.stack(arrays), labels


def test_labels_and_class_names_come_from_dataset_json(packed):
    path, arrays, labels = packed
    ds = zip_dataset(str(path), workers=0)
    assert type(ds) is TensorDataset and ds.sample_shape == (3, 8, 8) and ds.name == "set.zip"
    assert torch.equal(ds.x, torch.from_numpy(arrays).permute(0, 3, 1, 2))
    assert ds.labels.tolist() == labels and ds.num_classes == 3 and ds.class_names == ["a", "b", "c"]


@pytest.mark.parametrize("mirror", [False, True])
def test_streamed_and_in_memory_give_the_same_batches(packed, mirror):
    path = packed[0]
    memory = zip_dataset(str(path), mirror=mirror, workers=0)
    streamed = zip_dataset(str(path), mirror=mirror, stream=True, workers=2)
    assert isinstance(streamed, StreamingImages)
    ga, gb = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    for n in (6, 6, 5):
        (xa, ya), (xb, yb) = memory.sample(n, ga), streamed.sample(n, gb)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(memory.all(limit=4)[0], streamed.all(limit=4)[0])


def test_mirror_doubles_the_set_with_x_flips(packed):
    path, arrays, labels = packed
    ds = zip_dataset(str(path), mirror=True, workers=0)
    assert len(ds) == 10 and ds.pool_size == 20
    g = torch.Generator().manual_seed(1)
    idx = ds.draw(64, torch.Generator().manual_seed(1))
    x, y = ds.sample(64, g)
    stored = torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 127.5 - 1
    expected = torch.where((idx >= 10)[:, None, None, None], stored[idx % 10].flip(-1), stored[idx % 10])
    assert torch.allclose(x, expected, atol=1e-6) and y.tolist() == [labels[i] for i in (idx % 10).tolist()]
    assert 0 < int((idx >= 10).sum()) < 64  # both halves drawn
    assert torch.allclose(ds.all()[0], stored, atol=1e-6)  # the stored set (the real statistics): unflipped


def test_processes_draw_from_disjoint_shards_of_the_mirrored_set(packed):
    shards = [set(zip_dataset(str(packed[0]), mirror=True, workers=0).shard(r, 2)._index.tolist()) for r in (0, 1)]
    assert shards[0].isdisjoint(shards[1]) and shards[0] | shards[1] == set(range(20))


def test_resolution_and_channels_resize_and_convert(packed):
    path, arrays, _ = packed
    small = zip_dataset(str(path), resolution=4, channels=1, workers=0)
    from PIL import Image

    expected = np.stack([np.asarray(Image.fromarray(a).convert("L").resize((4, 4), Image.BICUBIC)) for a in arrays])
    assert small.sample_shape == (1, 4, 4) and torch.equal(small.x[:, 0], torch.from_numpy(expected))


def test_stylegan2_ada_zips_read_with_their_labels(tmp_path):
    rng = np.random.default_rng(2)
    arrays = [pixels(rng, 8, 8, 1) for _ in range(3)]
    write_stylegan_zip(tmp_path / "sg.zip", arrays, [2, 0, 1])
    ds = zip_dataset(str(tmp_path / "sg.zip"), workers=0)
    assert ds.sample_shape == (1, 8, 8) and torch.equal(ds.x[:, 0], torch.from_numpy(np.stack(arrays)))
    assert ds.labels.tolist() == [2, 0, 1] and ds.num_classes == 3 and ds.class_names is None


def bad_zip(tmp_path, case):
    """A zip with one thing wrong, and the fragment of the sentence that refuses it."""
    rng = np.random.default_rng(3)
    arrays = [pixels(rng, 8, 8) for _ in range(3)]
    path = tmp_path / "bad.zip"
    if case == "corrupt":
        path.write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
        return path, "is not a readable zip archive"
    if case == "foreign_names":
        write_zip(path, arrays, [0, 1, 0], extra={"labels": [["00000/img00000000.png", 0], ["gone.png", 1]]})
        return path, "labels 1 file(s) the zip does not hold (first: 'gone.png')"
    if case == "unlabelled_images":
        write_zip(path, arrays, extra={"labels": [["00000/img00000000.png", 0]]})
        return path, "2 image(s) of"
    if case == "out_of_range":
        write_zip(path, arrays, [0, 3, 1], ["a", "b", "c"])
        return path, "gives '00000/img00000001.png' the label 3, outside the 3 classes 0..2"
    if case == "negative":
        write_zip(path, arrays, [0, -1, 1])
        return path, "the label -1, outside 0 or more"
    if case == "vector":
        write_zip(path, arrays, [[0.5, 0.5], 1, 0])
        return path, "the label [0.5, 0.5]: only whole-number class labels"
    if case == "no_images":
        write_zip(path, [])
        return path, "holds no images"
    with warnings.catch_warnings():  # zipfile warns of the duplicate it is asked to write
        warnings.simplefilter("ignore")
        write_zip(path, arrays, names=["a.png", "a.png", "b.png"])
    return path, "holds 1 name(s) twice (first: 'a.png')"


@pytest.mark.parametrize("case", ["corrupt", "foreign_names", "unlabelled_images", "out_of_range", "negative", "vector",
                                  "no_images", "duplicates"])
def test_each_bad_zip_is_one_sentence(tmp_path, case):
    path, fragment = bad_zip(tmp_path, case)
    with pytest.raises(UserError) as e:
        zip_dataset(str(path), workers=0)
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("stream, pipe_max", [(False, None), (True, None), (True, 0)])
def test_a_truncated_png_is_skipped_with_a_count_or_named(tmp_path, caplog, monkeypatch, stream, pipe_max):
    if pipe_max is not None:  # batches leave the loader as tensors (the large-batch path), not numpy arrays
        monkeypatch.setattr("gan_platform.data.streaming.PIPE_MAX_BYTES", pipe_max)
    rng = np.random.default_rng(4)
    arrays = [pixels(rng, 8, 8) for _ in range(4)]
    names = [f"00000/img{i:08d}.png" for i in range(4)]
    with zipfile.ZipFile(tmp_path / "cut.zip", "w") as z:  # image 1's PNG cut short inside a sound zip
        for i, (name, arr) in enumerate(zip(names, arrays)):
            data = encode_plain(arr)
            z.writestr(name, data[: len(data) // 2] if i == 1 else data)
        z.writestr("dataset.json", json.dumps({"labels": [[n, i % 2] for i, n in enumerate(names)]}))
    ds = zip_dataset(str(tmp_path / "cut.zip"), stream=stream, workers=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        x, _ = ds.sample(8, g)
        assert torch.isfinite(x).all()
    if not stream:
        assert len(ds) == 3 and ds.labels.tolist() == [0, 0, 1]
    assert any("img00000001.png" in r.message and ("Skipped 1" in r.message or "Unreadable" in r.message)
               for r in caplog.records)
    with pytest.raises(UserError, match="Cannot read image '00000/img00000001.png' of '.*cut.zip': remove or replace it"):
        strict = zip_dataset(str(tmp_path / "cut.zip"), stream=stream, workers=0, on_corrupt="error")  # in memory: here
        for _ in range(20):  # streamed: when a batch needs it
            strict.sample(8, torch.Generator().manual_seed(0))


def test_options_are_checked_before_reading(packed):
    with pytest.raises(ConfigError, match="dataset.path is not set"):
        zip_dataset(None)
    with pytest.raises(ConfigError, match="dataset.channels must be 1, 3 or null"):
        zip_dataset(str(packed[0]), channels=2)
    with pytest.raises(ConfigError, match="dataset.mirror flips images"):
        TensorDataset("ring", torch.zeros(4, 2), kind="points", mirror=True)


def test_an_unlabelled_conditional_run_and_a_48_px_zip_for_dcgan_are_one_sentence(tmp_path):
    rng = np.random.default_rng(5)
    write_zip(tmp_path / "u.zip", [pixels(rng, 8, 8) for _ in range(4)])
    write_zip(tmp_path / "w.zip", [pixels(rng, 48, 48) for _ in range(4)], [0, 1, 0, 1])
    common = ["dataset=zip", "dataset.workers=0", "model=dcgan", "trainer.steps=1", "eval.enabled=false", *TINY]
    with pytest.raises(ConfigError, match="needs labelled data, and dataset 'u.zip' has no labels"):
        train(tmp_path / "run", [*common, f"dataset.path={tmp_path / 'u.zip'}", "task.conditional=true"])
    done = run_cli([*common, f"dataset.path={tmp_path / 'w.zip'}"], cwd=tmp_path)  # as a user sees it
    assert done.returncode == 2 and "needs square images of side 8, 16, 32, 64, ...; got 48: set dataset.resolution" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_evaluation_records_the_zip_sha256_and_keys_its_cache_by_it(tmp_path):
    from accelerate import Accelerator

    from gan_platform.data.packed.archive import content_sha256, open_archive
    from gan_platform.evaluation.features import build_extractor
    from gan_platform.evaluation.gan_evaluator import GANEvaluator

    rng = np.random.default_rng(6)
    arrays = [pixels(rng, 16, 16, 1) for _ in range(6)]
    one = write_zip(tmp_path / "one.zip", arrays, [0, 1, 0, 1, 0, 1])
    two = write_zip(tmp_path / "two.zip", arrays, [1, 1, 0, 1, 0, 1])  # the same pixels, one label changed
    acc = Accelerator(cpu=True)

    def evaluate(path):
        ds = zip_dataset(str(path), workers=0)
        ev = GANEvaluator(accelerator=acc, dataset=ds, extractor=build_extractor("digits", ds.sample_shape, {}),
                          num_classes=0, num_samples=4)
        return ev.protocol()

    first, second, again = evaluate(one), evaluate(two), evaluate(one)
    assert first["dataset_sha256"] == content_sha256(open_archive(one)) != second["dataset_sha256"]
    assert first["real_sha256"] == second["real_sha256"] and first["dataset_file"] == "one.zip"
    assert (first["real_statistics"], second["real_statistics"], again["real_statistics"]) == ("computed", "computed", "cache")


def weights(run_dir):
    state, _ = load_checkpoint(run_dir / "checkpoints" / "last")
    return state["modules"]


@pytest.mark.slow
def test_a_streamed_mirrored_zip_run_equals_the_in_memory_run_and_resumes_exactly(packed, tmp_path):
    def run_on(run_dir, stream, steps, resume=False):
        overrides = [*TINY, "dataset=zip", f"dataset.path={packed[0]}", f"dataset.stream={stream}", "dataset.workers=2",
                     "dataset.mirror=true", "model=dcgan", "model.generator.width=8", "model.discriminator.width=8",
                     "model.z_dim=8", "trainer.batch_size=8", "trainer.log_every=2", "trainer.sample_every=0",
                     "trainer.checkpoint_every=2", "eval.every=0", "eval.num_samples=16", "eval.features=identity",
                     f"trainer.steps={steps}", "seed=3"] + (["trainer.resume=auto"] if resume else [])
        return train(run_dir, overrides)

    run_on(tmp_path / "memory", "false", 4)
    run_on(tmp_path / "resumed", "true", 2)  # streamed, stopped at step 2 ...
    run_on(tmp_path / "resumed", "true", 4, resume=True)  # ... and resumed: the in-memory run's weights, bit for bit
    a, c = weights(tmp_path / "memory"), weights(tmp_path / "resumed")
    for net in a:
        for key in a[net]:
            assert torch.equal(a[net][key], c[net][key]), (net, key)


@pytest.mark.slow
def test_two_processes_stream_their_own_shards_of_a_mirrored_zip(packed, tmp_path):
    """`accelerate launch` with two CPU processes, each streaming the zip through its own reader
    worker: the run finishes with both replicas in step and each rank's data stream its own."""
    from helpers.launch import finish, launch

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    args = [*TINY, "dataset=zip", f"dataset.path={packed[0]}", "dataset.stream=true", "dataset.workers=1",
            "dataset.mirror=true", "model=dcgan", "model.generator.width=8", "model.discriminator.width=8",
            "trainer.batch_size=4", "trainer.steps=3", "trainer.log_every=1", "eval.every=0", "eval.features=identity",
            "eval.num_samples=8", f"hydra.run.dir={tmp_path / 'run'}"]
    code, out = finish(launch(args, tmp_path, scratch))
    assert code == 0, out[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["num_processes"] == 2 and summary["replicas"]["in_sync"] is True
    state, _ = load_checkpoint(tmp_path / "run" / "checkpoints" / "last")
    assert not state["rng"][0]["data"].equal(state["rng"][1]["data"])
