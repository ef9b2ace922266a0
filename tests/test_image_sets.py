"""Image sets on disk, both ways: `sample --export` writes uint8 images with their protocol (a folder,
a zip, an npz), `evaluate --fake` scores any such set, and every bad input is one sentence."""

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.evaluation import evaluate
from gan_platform.errors import UserError
from gan_platform.evaluate import main as evaluate_main
from gan_platform.evaluation.image_sets import export_images, read_image_set
from gan_platform.sample import main as sample_main


def _one_sentence(text):
    return text.strip().endswith(".") and text.count(". ") == 0


@pytest.mark.parametrize("target", ["set", "set.zip", "set.npz"])
@pytest.mark.parametrize("channels", [1, 3])
def test_an_exported_set_reads_back_bit_for_bit_with_labels_and_protocol(tmp_path, target, channels):
    images = torch.randint(0, 256, (7, channels, 8, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(channels))
    labels = torch.tensor([3, 1, 4, 1, 5, 9, 2])
    export_images(images, labels, {"seed": 5}, tmp_path / target)
    found = read_image_set(tmp_path / target)
    assert torch.equal(found.images, images) and torch.equal(found.labels, labels) and found.protocol == {"seed": 5}
    assert torch.allclose(found.decoded(), images.float() / 127.5 - 1, atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
    with pytest.raises(UserError, match="already exists, and an export never overwrites") as e:
        export_images(images, labels, {}, tmp_path / target)
    assert _one_sentence(str(e.value))


def test_other_tools_layouts_are_read(tmp_path):
    """A folder of PNGs someone else wrote (no dataset.json), and an NCHW npz under 'images'."""
    (tmp_path / "pngs").mkdir()
    for i in range(3):
        Image.fromarray(np.full((5, 4, 3), 40 * i, np.uint8)).save(tmp_path / "pngs" / f"img{i}.png")
    (tmp_path / "pngs" / "notes.txt").write_text("not an image")
    found = read_image_set(tmp_path / "pngs")
    assert found.images.shape == (3, 3, 5, 4) and found.labels is None and found.images[2].float().mean() == 80
    np.savez(tmp_path / "nchw.npz", images=np.zeros((2, 1, 4, 4), np.uint8))
    assert read_image_set(tmp_path / "nchw.npz").images.shape == (2, 1, 4, 4)


def _bad_sets(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    with zipfile.ZipFile(tmp_path / "mixed.zip", "w") as z:
        for name, side in (("a.png", 8), ("b.png", 16)):
            buf = __import__("io").BytesIO()
            Image.fromarray(np.zeros((side, side), np.uint8)).save(buf, format="PNG")
            z.writestr(name, buf.getvalue())
    np.savez(tmp_path / "floats.npz", arr_0=np.zeros((2, 4, 4, 3), np.float32))
    (tmp_path / "notes.txt").write_text("hello")
    return {"missing": "does not exist", "empty": "holds no image files", "broken": "cannot be read as an image",
            "mixed.zip": "mixes resolutions: 'a.png' is 8 x 8 grey but 'b.png' is 16 x 16 grey",
            "floats.npz": "holds float32 images", "notes.txt": "neither a folder nor a .zip or .npz"}


def test_sets_that_cannot_be_scored_are_one_sentence(tmp_path):
    for name, phrase in _bad_sets(tmp_path).items():
        with pytest.raises(UserError) as e:
            read_image_set(tmp_path / name)
        assert phrase in str(e.value) and _one_sentence(str(e.value)), str(e.value)


def test_exported_samples_scored_through_fake_give_the_in_process_fid(digit_run, tmp_path, capsys):  # noqa: F811
    """The same latents (seed 0, sample i of class i mod 10): the FID of the samples themselves and of
    their uint8 images read back differ only by the rounding to uint8."""
    assert sample_main([str(digit_run), "--export", "300", "--out", str(tmp_path / "s.zip")]) == 0
    assert sample_main([str(digit_run), "--export", "300", "--out", str(tmp_path / "s.npz")]) == 0
    evaluate([digit_run, "--num-samples", 300, "--name", "inproc", "--metrics", "fid,class_accuracy"])
    evaluate([digit_run, "--fake", tmp_path / "s.zip", "--name", "viazip", "--metrics", "fid,class_accuracy"])
    evaluate([digit_run, "--fake", tmp_path / "s.npz", "--name", "vianpz", "--metrics", "fid,class_accuracy"])
    inproc, viazip, vianpz = (json.loads((digit_run / f"eval_{n}.json").read_text()) for n in ("inproc", "viazip", "vianpz"))
    fid = inproc["metrics"]["eval/fid"]["mean"]
    assert viazip["metrics"]["eval/fid"]["mean"] == pytest.approx(fid, rel=2e-4)
    assert vianpz["metrics"]["eval/fid"]["mean"] == viazip["metrics"]["eval/fid"]["mean"]  # the same images
    assert viazip["metrics"]["eval/class_accuracy"]["mean"] == pytest.approx(inproc["metrics"]["eval/class_accuracy"]["mean"], abs=0.01)
    from gan_platform.evaluation.image_sets import to_uint8
    from gan_platform.runs.generator import load_generator

    trained = load_generator(digit_run)   # the images are those of evaluate's first set: latent i of seed 0, class i mod 10
    first_set = to_uint8(trained.sample(300, torch.arange(300) % 10, z=trained.noise(300, 0)))
    assert torch.equal(read_image_set(tmp_path / "s.zip").images, first_set)
    assert torch.equal(read_image_set(tmp_path / "s.zip").labels, torch.arange(300) % 10)
    made = viazip["protocol"]["fake_protocol"]
    assert (made["seed"], made["num_samples"], made["step"], made["image_shape"]) == (0, 300, 3, [1, 16, 16])
    with pytest.raises(SystemExit) as e:  # an export never overwrites
        sample_main([str(digit_run), "--export", "10", "--out", str(tmp_path / "s.zip")])
    assert e.value.code == 2 and "already exists" in capsys.readouterr().err


def test_images_of_another_size_than_the_runs_are_one_sentence(digit_run, tmp_path, capsys):  # noqa: F811
    export_images(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), None, {}, tmp_path / "big.npz")
    with pytest.raises(SystemExit) as e:
        evaluate_main([str(digit_run), "--fake", str(tmp_path / "big.npz")])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and "are 32 x 32 with 3 channel(s)" in err and "16 x 16 with 1" in err
    assert _one_sentence(err.removeprefix("gan_platform: error: "))


def test_a_set_is_scored_against_a_dataset_config_or_a_reference_file_alone(digit_run, tmp_path, monkeypatch):  # noqa: F811
    """No run at all: `--fake SET dataset=digits` composes the data and its features with Hydra, and
    `--fake SET --ref FILE` needs neither; both give the FID the run's data gives."""
    monkeypatch.chdir(tmp_path)
    assert sample_main([str(digit_run), "--export", "200", "--out", str(tmp_path / "s.npz")]) == 0
    evaluate([digit_run, "--fake", tmp_path / "s.npz", "--name", "run", "--metrics", "fid", "--save-ref", tmp_path / "ref.npz"])
    evaluate(["--fake", tmp_path / "s.npz", "dataset=digits", "--name", "config", "--metrics", "fid"])
    evaluate(["--fake", tmp_path / "s.npz", "--ref", tmp_path / "ref.npz", "--name", "ref", "--metrics", "fid"])
    run = json.loads((digit_run / "eval_run.json").read_text())["metrics"]["eval/fid"]["mean"]
    config, ref = (json.loads((tmp_path / f"eval_{n}.json").read_text()) for n in ("config", "ref"))
    assert config["metrics"]["eval/fid"]["mean"] == pytest.approx(run, rel=1e-9) and config["protocol"]["extractor"] == "digits"
    assert ref["metrics"]["eval/fid"]["mean"] == pytest.approx(run, rel=1e-6) and ref["protocol"]["reference"].endswith("ref.npz")
    with pytest.raises(SystemExit) as e:   # a run's data is the run's: only eval.* settings beside a run dir
        evaluate_main([str(digit_run), "--fake", str(tmp_path / "s.npz"), "dataset=mnist"])
    assert e.value.code == 2
