"""gan-dataset packs every source format into one zip of plain PNGs with stylegan2-ada's dataset.json:
the pixels are the transform's, the labels and class names the source's, the zip reads back here
and in stylegan2-ada's layout, the same input gives the same bytes, and each bad input is one
sentence with nothing written under the destination's name."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from helpers.dataset_sources import (encode, make_cifar10, make_cifar100, make_folder, make_hf, make_idx, make_lmdb, pixels,
                                     write_stylegan_zip)
from gan_platform.data.pack.__main__ import main
from gan_platform.data.packed.archive import ZipReader, content_sha256, open_archive
from gan_platform.data.packed.png import decode_plain, encode_plain
from gan_platform.data.readers import decode_bytes


def pack(capsys, *args: str) -> tuple[int, str, str]:
    """gan-dataset ARGS in this process: (exit code, stdout, stderr)."""
    try:
        rc = main([*map(str, args), "--quiet"])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def stored(path) -> tuple[list[str], np.ndarray, list, dict]:
    """(names, pixels (N, H, W[, C]) as Pillow decodes the members, labels or None, dataset.json)."""
    with zipfile.ZipFile(path) as z:
        meta = json.loads(z.read("dataset.json"))
        names = sorted(n for n in z.namelist() if n.endswith(".png"))
        arrays = np.stack([np.asarray(Image.open(io.BytesIO(z.read(n)))) for n in names])
    labels = dict(meta["labels"]) if meta["labels"] is not None else None
    return names, arrays, ([labels[n] for n in names] if labels is not None else None), meta


def crop_resize(arr: np.ndarray, side: int) -> np.ndarray:
    """The spec of center-crop: the central square of side min(w, h), Lanczos to side x side."""
    h, w = arr.shape[:2]
    c = min(w, h)
    image = Image.fromarray(arr).crop(((w - c) // 2, (h - c) // 2, (w - c) // 2 + c, (h - c) // 2 + c))
    return np.asarray(image.resize((side, side), Image.LANCZOS))


def test_a_folder_of_class_subfolders_keeps_names_labels_and_the_transformed_pixels(tmp_path, capsys):
    made = make_folder(tmp_path / "src", {"cat": 3, "dog": 2}, size=(12, 10))
    rc, out, err = pack(capsys, tmp_path / "src", tmp_path / "out.zip", "--resolution", 8)
    assert rc == 0, err
    names, arrays, labels, meta = stored(tmp_path / "out.zip")
    assert names == ["cat/000.png", "cat/001.png", "cat/002.png", "dog/000.png", "dog/001.png"]
    assert labels == [0, 0, 0, 1, 1] and meta["class_names"] == ["cat", "dog"]
    for name, arr in zip(names, arrays):
        assert np.array_equal(arr, crop_resize(made[name], 8)), name
    index = open_archive(tmp_path / "out.zip")
    assert f"out.zip: 5 images, 2 classes (cat, dog), 8 x 8 RGB, {(tmp_path / 'out.zip').stat().st_size:,} bytes" in out
    assert f"content SHA-256: {content_sha256(index)}" in out
    with zipfile.ZipFile(tmp_path / "out.zip") as z:  # plain PNGs: our fast path reads them, as Pillow does
        assert all(np.array_equal(decode_plain(z.read(n)), a) for n, a in zip(names, arrays))


def test_loose_images_or_no_labels_pack_unlabelled(tmp_path, capsys):
    make_folder(tmp_path / "loose", {"": 3}, size=(8, 8))
    make_folder(tmp_path / "classes", {"a": 2, "b": 1}, size=(8, 8))
    assert pack(capsys, tmp_path / "loose", tmp_path / "loose.zip")[0] == 0
    assert pack(capsys, tmp_path / "classes", tmp_path / "flat.zip", "--no-labels")[0] == 0
    assert stored(tmp_path / "loose.zip")[3] == {"labels": None}
    names, _, labels, meta = stored(tmp_path / "flat.zip")
    assert names == ["a/000.png", "a/001.png", "b/000.png"] and labels is None and "class_names" not in meta


def test_cifar10_tarball_and_folder_give_byte_identical_zips_of_its_images(tmp_path, capsys):
    tar, images, labels = make_cifar10(tmp_path / "t", tarball=True)
    folder, _, _ = make_cifar10(tmp_path / "f")
    assert pack(capsys, tar, tmp_path / "a.zip")[0] == 0
    assert pack(capsys, folder.parent, tmp_path / "b.zip")[0] == 0
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    names, arrays, stored_labels, meta = stored(tmp_path / "a.zip")
    assert names[:2] == ["00000/img00000000.png", "00000/img00000001.png"] and len(names) == 15
    assert np.array_equal(arrays, images) and stored_labels == labels.tolist()
    assert meta["class_names"][:3] == ["airplane", "automobile", "bird"]
    assert pack(capsys, tar, tmp_path / "test.zip", "--split", "test")[0] == 0
    assert len(stored(tmp_path / "test.zip")[0]) == 3


def test_cifar100_fine_or_coarse_labels(tmp_path, capsys):
    folder, images, fine, coarse = make_cifar100(tmp_path)
    assert pack(capsys, folder, tmp_path / "fine.zip")[0] == 0
    assert pack(capsys, folder, tmp_path / "coarse.zip", "--label-column", "coarse_labels")[0] == 0
    _, arrays, labels, meta = stored(tmp_path / "fine.zip")
    assert np.array_equal(arrays, images) and labels == fine.tolist() and len(meta["class_names"]) == 100
    _, _, labels, meta = stored(tmp_path / "coarse.zip")
    assert labels == coarse.tolist() and meta["class_names"][0] == "coarse0" and len(meta["class_names"]) == 20


def test_idx_files_pad_mnist_to_32_with_two_black_pixels_a_side(tmp_path, capsys):
    images, labels = make_idx(tmp_path / "MNIST" / "raw", "train", gz=True)
    test_images, _ = make_idx(tmp_path / "MNIST" / "raw", "t10k", count=2, gz=False)
    rc, out, _ = pack(capsys, tmp_path / "MNIST", tmp_path / "mnist.zip", "--resolution", 32, "--transform", "pad",
                      "--class-names", ",".join("0123456789"))
    assert rc == 0 and "32 x 32 grey" in out
    _, arrays, stored_labels, meta = stored(tmp_path / "mnist.zip")
    assert np.array_equal(arrays, np.pad(images, [(0, 0), (2, 2), (2, 2)])) and stored_labels == labels.tolist()
    assert meta["class_names"] == list("0123456789")
    assert pack(capsys, tmp_path / "MNIST", tmp_path / "t.zip", "--resolution", 32, "--transform", "pad", "--split", "test")[0] == 0
    assert np.array_equal(stored(tmp_path / "t.zip")[1][:, 2:30, 2:30], test_images)


def test_an_lsun_style_lmdb_packs_its_values_in_key_order(tmp_path, capsys):
    pytest.importorskip("lmdb")
    arrays = make_lmdb(tmp_path / "bedroom_train_lmdb")
    rc, out, _ = pack(capsys, tmp_path / "bedroom_train_lmdb", tmp_path / "lsun.zip", "--resolution", 16)
    assert rc == 0 and "4 images, unlabelled" in out
    _, stored_arrays, labels, _ = stored(tmp_path / "lsun.zip")
    assert labels is None and all(np.array_equal(s, crop_resize(a, 16)) for s, a in zip(stored_arrays, arrays))


def test_a_saved_hugging_face_dataset_packs_a_split_with_its_class_names(tmp_path, capsys):
    pytest.importorskip("datasets")
    made = make_hf(tmp_path / "hf")
    assert pack(capsys, tmp_path / "hf", tmp_path / "hf.zip", "--split", "test")[0] == 0
    _, arrays, labels, meta = stored(tmp_path / "hf.zip")
    assert np.array_equal(arrays, np.stack(made["test"][0])) and labels == made["test"][1]
    assert meta["class_names"] == ["ant", "bee", "cow"]


def test_stylegan2_ada_zips_read_here_and_repack_to_the_same_pixels(tmp_path, capsys):
    rng = np.random.default_rng(5)
    arrays = [pixels(rng, 8, 8) for _ in range(4)]
    names = write_stylegan_zip(tmp_path / "sg.zip", arrays, [1, 0, 2, 1])
    with zipfile.ZipFile(tmp_path / "sg.zip") as z:  # Pillow filters its rows: not plain, Pillow decodes them
        assert decode_plain(z.read(names[0])) is None
        assert np.array_equal(decode_bytes(z.read(names[0]), 8, 3), arrays[0].transpose(2, 0, 1))
    assert pack(capsys, tmp_path / "sg.zip", tmp_path / "ours.zip")[0] == 0
    ours, stored_arrays, labels, meta = stored(tmp_path / "ours.zip")
    assert ours == names and np.array_equal(stored_arrays, np.stack(arrays)) and labels == [1, 0, 2, 1]
    assert set(meta) == {"labels"}  # no class names to keep: exactly stylegan2-ada's dataset.json
    assert pack(capsys, tmp_path / "sg.zip", tmp_path / "plain.zip", "--no-labels")[0] == 0
    assert stored(tmp_path / "plain.zip")[3] == {"labels": None}
    rc, _, err = pack(capsys, tmp_path / "sg.zip", tmp_path / "named.zip", "--no-labels", "--class-names", "a,b,c")
    assert rc == 2 and "is packed unlabelled: drop --class-names" in err and not (tmp_path / "named.zip").exists()


def test_center_crop_wide_puts_the_band_on_a_black_canvas_and_skips_small_images(tmp_path, capsys):
    rng = np.random.default_rng(6)
    (tmp_path / "src").mkdir()
    wide = pixels(rng, 30, 40)
    Image.fromarray(wide).save(tmp_path / "src" / "a.png")
    Image.fromarray(pixels(rng, 30, 10)).save(tmp_path / "src" / "b.png")  # narrower than 16: skipped
    rc, out, err = pack(capsys, tmp_path / "src", tmp_path / "w.zip", "--resolution", "16x12", "--transform", "center-crop-wide")
    assert rc == 0, err
    assert "1 images" in out and "skipped 1 image(s) too small for center-crop-wide" in out
    (image,) = stored(tmp_path / "w.zip")[1]
    band = np.asarray(Image.fromarray(wide).resize((16, 12), Image.LANCZOS))  # 40 x 30 is 4:3 already: all of it
    assert not image[:2].any() and not image[14:].any() and np.array_equal(image[2:14], band)


def test_pad_centres_the_whole_image_scaling_down_only_when_larger(tmp_path, capsys):
    (tmp_path / "src").mkdir()
    Image.fromarray(np.full((20, 40, 3), 200, np.uint8)).save(tmp_path / "src" / "a.png")
    assert pack(capsys, tmp_path / "src", tmp_path / "p.zip", "--resolution", 16, "--transform", "pad")[0] == 0
    (image,) = stored(tmp_path / "p.zip")[1]
    assert image.shape == (16, 16, 3) and not image[:4].any() and not image[12:].any()
    assert np.abs(image[4:12].astype(int) - 200).max() <= 1  # 40 x 20 -> 16 x 8, rows 4..11


def test_grey_images_join_a_colour_set_and_the_reverse_needs_channels(tmp_path, capsys):
    rng = np.random.default_rng(7)
    (tmp_path / "rgb_first").mkdir()
    Image.fromarray(pixels(rng, 8, 8)).save(tmp_path / "rgb_first" / "a.png")
    grey = pixels(rng, 8, 8, channels=1)
    Image.fromarray(grey).save(tmp_path / "rgb_first" / "b.png")
    rc, out, _ = pack(capsys, tmp_path / "rgb_first", tmp_path / "a.zip")
    assert rc == 0 and "1 grey image(s) stored as RGB" in out
    assert np.array_equal(stored(tmp_path / "a.zip")[1][1], np.repeat(grey[..., None], 3, axis=2))
    rc, _, _ = pack(capsys, tmp_path / "rgb_first", tmp_path / "g.zip", "--channels", "1")
    assert rc == 0 and stored(tmp_path / "g.zip")[1].shape == (2, 8, 8)


def test_plain_pngs_are_png_to_pillow_and_anything_else_falls_back(tmp_path):
    rng = np.random.default_rng(8)
    for arr in (pixels(rng, 5, 7), pixels(rng, 6, 3, channels=1)):
        for level in (0, 9):
            data = encode_plain(arr, level)
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), arr)
            assert np.array_equal(decode_plain(data), arr)
    data = encode_plain(pixels(rng, 8, 8))
    assert decode_plain(data[:-30]) is None and decode_plain(encode(pixels(rng, 8, 8), "PNG")) is None


def _two_images(folder, first, second):
    folder.mkdir()
    first.save(folder / "a.png")
    second.save(folder / ("b.png" if second.format != "JPEG" else "a.jpg"))
    return folder


def _image(arr, fmt="PNG"):
    image = Image.fromarray(arr)
    image.format = fmt
    return image


def _folder_case(tmp_path, case):
    """The source of one bad-input case, made in tmp_path: (arguments after SOURCE DEST, fragment)."""
    rng = np.random.default_rng(9)
    if case == "duplicate":
        return [_two_images(tmp_path / "s", _image(pixels(rng, 8, 8)), _image(pixels(rng, 8, 8), "JPEG"))], \
            "would both be stored as 'a.png'"
    if case == "colour_in_grey":
        return [_two_images(tmp_path / "s", _image(pixels(rng, 8, 8, 1)), _image(pixels(rng, 8, 8)))], \
            "b.png' is in colour while the images before it are grey: pass --channels 3"
    if case == "alpha":
        return [_two_images(tmp_path / "s", _image(pixels(rng, 8, 8, 4)), _image(pixels(rng, 8, 8, 4)))], \
            "has an alpha channel (RGBA): pass --channels 3"
    if case == "not_square":
        make_folder(tmp_path / "s", {"": 1}, size=(12, 8))
        return [tmp_path / "s"], "is 12 x 8, not square"
    if case in ("28_px", "48_px"):
        make_idx(tmp_path / "s")
        return ([tmp_path / "s"], "are 28 x 28, and the networks need a power of two") if case == "28_px" else \
            ([tmp_path / "s", "--resolution", "48"], "--resolution 48 is not a power of two")
    if case == "unreadable":
        make_folder(tmp_path / "s", {"": 2}, size=(8, 8))
        (tmp_path / "s" / "001.png").write_bytes(encode_plain(pixels(rng, 8, 8))[:60])  # a PNG cut short
        return [tmp_path / "s", "--on-corrupt", "error"], "Cannot read '"
    if case == "not_lmdb":
        (tmp_path / "x_lmdb").mkdir()
        (tmp_path / "x_lmdb" / "data.mdb").write_bytes(b"not a database" * 400)
        return [tmp_path / "x_lmdb"], "is not an LMDB database"
    return [tmp_path / "nowhere"], "does not exist"


@pytest.mark.parametrize("case", ["duplicate", "colour_in_grey", "alpha", "not_square", "28_px", "48_px", "unreadable",
                                  "not_lmdb", "missing"])
def test_each_bad_input_is_one_sentence_and_writes_nothing(tmp_path, capsys, case):
    if case == "not_lmdb":
        pytest.importorskip("lmdb")
    args, fragment = _folder_case(tmp_path, case)
    out = tmp_path / "out" / "set.zip"
    rc, _, err = pack(capsys, args[0], out, *args[1:])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())  # no zip, no temporary file


def test_an_existing_zip_needs_overwrite_and_max_images_and_skips_are_counted(tmp_path, capsys):
    make_folder(tmp_path / "src", {"": 5}, size=(8, 8))
    (tmp_path / "src" / "002.png").write_bytes(b"broken")
    (tmp_path / "set.zip").write_bytes(b"keep me")
    rc, _, err = pack(capsys, tmp_path / "src", tmp_path / "set.zip")
    assert rc == 2 and "already exists: pass --overwrite" in err and (tmp_path / "set.zip").read_bytes() == b"keep me"
    rc, out, _ = pack(capsys, tmp_path / "src", tmp_path / "set.zip", "--overwrite")
    assert rc == 0 and "4 images" in out and "skipped 1 unreadable image(s) (first: '" in out and "002.png" in out
    rc, out, _ = pack(capsys, tmp_path / "src", tmp_path / "three.zip", "--max-images", 3)
    assert rc == 0 and len(stored(tmp_path / "three.zip")[0]) == 3


def test_worker_processes_write_the_same_bytes(tmp_path, capsys):
    make_folder(tmp_path / "src", {"a": 20, "b": 20}, size=(12, 12))
    assert pack(capsys, tmp_path / "src", tmp_path / "one.zip", "--resolution", 8, "--workers", 0)[0] == 0
    assert pack(capsys, tmp_path / "src", tmp_path / "two.zip", "--resolution", 8, "--workers", 2)[0] == 0
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    assert content_sha256(open_archive(tmp_path / "one.zip")) == content_sha256(open_archive(tmp_path / "two.zip"))
    reader = ZipReader(open_archive(tmp_path / "one.zip"), 8, 3)
    assert reader.read(0).shape == (3, 8, 8)


def _start_slow_pack(tmp_path, dest, *extra):
    """gan-dataset in its own process on 3,000 idx images made slow to pack (256 px, zlib level 9), and
    the moment its temporary zip has data."""
    import subprocess
    import sys
    import time

    from helpers import cli_env

    make_idx(tmp_path / "idx", count=3000)
    proc = subprocess.Popen([sys.executable, "-m", "gan_platform.data.pack", str(tmp_path / "idx"), str(dest), "--resolution",
                             "256", "--png-compression", "9", "--workers", "0", "--quiet", *extra], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 100_000 for p in dest.parent.glob(f".{dest.name}.*.partial")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    return proc


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_stopped_or_killed_run_leaves_no_zip_and_the_old_one_whole(tmp_path, how):
    import signal

    dest = tmp_path / "out" / "set.zip"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous zip")
    proc = _start_slow_pack(tmp_path, dest, "--overwrite")
    proc.send_signal(getattr(signal, how))
    proc.communicate(timeout=60)
    assert dest.read_bytes() == b"the previous zip"
    left = list(dest.parent.glob(".set.zip.*.partial"))
    if how == "SIGTERM":  # stopped: it cleans up after itself
        assert proc.returncode == 128 + signal.SIGTERM and not left
    else:  # killed: only its hidden temporary file remains, never a half zip under the final name
        assert proc.returncode == -signal.SIGKILL and len(left) == 1
