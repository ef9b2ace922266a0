"""Unpaired datasets: CycleGAN's folders as real PNG/JPEG files, and the embedded digit-style pair."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from helpers import TINY, train
from gan_platform.data.digit_styles import GROUND, INK, digit_styles, to_style_b, view_a, view_b
from gan_platform.data.digits import load_digit_images
from gan_platform.data.unpaired import unpaired_folders
from gan_platform.errors import UserError


def _solid(path, colour, size=(12, 10)):
    Image.new("RGB", size, colour).save(path)


def _folders(root, train_b=True, corrupt=False, tests=False):
    (root / "trainA").mkdir(parents=True)
    _solid(root / "trainA" / "red1.png", (255, 0, 0))
    _solid(root / "trainA" / "red2.png", (255, 0, 0), size=(20, 16))
    if train_b:
        (root / "trainB").mkdir()
        _solid(root / "trainB" / "blue.jpg", (0, 0, 255))
        _solid(root / "trainB" / "blue2.jpeg", (0, 0, 255), size=(8, 9))
        if corrupt:
            (root / "trainB" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    if tests:
        for d, colour in (("testA", (0, 255, 0)), ("testB", (255, 255, 255))):
            (root / d).mkdir()
            _solid(root / d / "x.png", colour)
    return root


def test_unpaired_folders_read_both_styles_from_real_files(tmp_path):
    ds = unpaired_folders(str(_folders(tmp_path / "set")), resolution=8)
    a, b = ds.sample(5, torch.Generator().manual_seed(0))
    assert a.shape == b.shape == (5, 3, 8, 8) and ds.sample_shape == (3, 8, 8)
    assert torch.allclose(a[:, 0], torch.ones(5, 8, 8)) and torch.allclose(a[:, 1:], -torch.ones(5, 2, 8, 8))
    assert (b[:, 2] > 0.9).all() and (b[:, :2] < -0.9).all()  # JPEG blue, give or take compression
    assert ds.test_from_train and len(ds.test_images("a")) == 2  # no testA/testB: evaluate on train images


def test_test_folders_are_used_for_evaluation(tmp_path):
    ds = unpaired_folders(str(_folders(tmp_path / "set", tests=True)), resolution=8)
    assert not ds.test_from_train
    assert torch.allclose(ds.test_images("a")[0, 1], torch.ones(8, 8))   # green
    assert torch.allclose(ds.test_images("b"), torch.ones(1, 3, 8, 8))  # white


def test_a_corrupt_image_is_skipped_or_named(tmp_path, caplog):
    root = _folders(tmp_path / "set", corrupt=True)
    ds = unpaired_folders(str(root), resolution=8)
    assert len(ds.domains["b"]) == 2 and "broken.jpg" in caplog.text
    with pytest.raises(UserError, match="broken.jpg"):
        unpaired_folders(str(root), resolution=8, on_corrupt="error")


def test_missing_train_b_or_no_images_is_one_sentence(tmp_path):
    root = _folders(tmp_path / "set", train_b=False)
    with pytest.raises(UserError, match="no trainB/ folder"):
        unpaired_folders(str(root), resolution=8)
    (root / "trainB").mkdir()
    with pytest.raises(UserError, match="holds no images"):
        unpaired_folders(str(root), resolution=8)
    with pytest.raises(UserError, match=r"trainB' holds no images"):
        train(tmp_path / "run", ["+experiment=cyclegan", "dataset=unpaired_folders", f"dataset.root={root}", *TINY])


def test_random_crops_and_flips_vary_centre_crops_do_not(tmp_path):
    root = tmp_path / "set"
    for d in ("trainA", "trainB"):
        (root / d).mkdir(parents=True)
        ramp = np.tile(np.arange(0, 240, 20, dtype=np.uint8), (12, 1))  # brightness grows left to right
        Image.fromarray(np.stack([ramp] * 3, -1)).save(root / d / "ramp.png")
    g = torch.Generator().manual_seed(0)
    fixed = unpaired_folders(str(root), resolution=8, load_size=12)
    a, _ = fixed.sample(6, g)
    assert torch.equal(a, a[:1].expand_as(a))
    jitter = unpaired_folders(str(root), resolution=8, load_size=12, crop="random", flip=True)
    a, _ = jitter.sample(32, g)
    left_right = a[:, 0, 0, -1] - a[:, 0, 0, 0]
    assert (left_right > 0).any() and (left_right < 0).any()    # some flipped, some not
    assert len(torch.unique(a[:, 0, 0, :].abs().sum(1))) > 1    # different offsets


def test_digit_styles_halves_are_disjoint_and_b_is_the_true_mapping_of_unseen_digits():
    ds = digit_styles(resolution=16)
    src = ds.source_indices
    a_ids = set(src["train_a"].tolist()) | set(src["test_a"].tolist())
    b_ids = set(src["train_b"].tolist()) | set(src["test_b"].tolist())
    assert not a_ids & b_ids and len(a_ids | b_ids) == 1797
    assert not set(src["train_a"].tolist()) & set(src["test_a"].tolist())
    grey, labels = load_digit_images(16)
    a_true = (grey.float() / 127.5 - 1).expand(-1, 3, -1, -1)
    b_test = ds.test_images("b")
    assert (b_test - to_style_b(a_true[src["test_b"]])).abs().max() <= 1 / 127.5 + 1e-6
    assert torch.equal(ds.test_labels["b"], labels[src["test_b"]])
    assert torch.allclose(ds.test_images("a"), a_true[src["test_a"]], atol=1e-6)


def test_true_mapping_inverts_thickens_and_tints_a_known_dot():
    a = -torch.ones(1, 3, 7, 7)
    a[:, :, 3, 3] = 1.0  # one bright ink pixel on a dark ground
    b = to_style_b(a)
    ink = torch.tensor(INK) * 2 - 1
    ground = torch.tensor(GROUND) * 2 - 1
    assert torch.allclose(b[0, :, 2:5, 2:5], ink.view(3, 1, 1).expand(3, 3, 3))  # a 3x3 navy square
    assert torch.allclose(b[0, :, 0, 0], ground) and torch.allclose(b[0, :, 5, 3], ground)
    assert torch.allclose(view_b(b), view_a(a), atol=1e-5)  # the classifier's view undoes it: erosion after dilation
    grey = (load_digit_images(16)[0][:50].float() / 127.5 - 1).expand(-1, 3, -1, -1)
    closed = -F.max_pool2d(-F.max_pool2d(view_a(grey), 3, 1, 1), 3, 1, 1)
    assert torch.allclose(view_b(to_style_b(grey)), closed, atol=1e-5)


def test_download_unpacks_a_cyclegan_zip_into_the_layout_the_dataset_reads(tmp_path):
    import zipfile

    from gan_platform.data.download import download_set

    staged = _folders(tmp_path / "staged" / "horse2zebra")
    archive = tmp_path / "horse2zebra.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in staged.rglob("*"):
            z.write(path, path.relative_to(staged.parent))
    folder = download_set("horse2zebra", tmp_path / "datasets", url=archive.as_uri())
    assert folder == tmp_path / "datasets" / "horse2zebra" and not list((tmp_path / "datasets").glob("*.zip*"))
    ds = unpaired_folders(str(folder), resolution=8)
    assert (len(ds.domains["a"]), len(ds.domains["b"])) == (2, 2)
    with pytest.raises(UserError, match="Could not download"):
        download_set("monet2photo", tmp_path / "datasets", url=(tmp_path / "missing.zip").as_uri())
    with pytest.raises(UserError, match="Unknown CycleGAN set"):
        download_set("horses", tmp_path / "datasets")
