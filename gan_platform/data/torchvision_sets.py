"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision's own dataset classes, held in memory.

The files are where torchvision puts them, so a folder filled by torchvision (or by hand, in the
official formats) works as is:

    ROOT/MNIST/raw/train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...
    ROOT/FashionMNIST/raw/   the same four files
    ROOT/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta

``download: true`` lets torchvision fetch missing files (network needed); the default is false,
and missing files are one sentence naming the folder and the fix. torchvision reads only the
unpacked idx files, so ``.gz`` files found alone (copied from a mirror) are unpacked beside them
first, as torchvision's own download would. CIFAR-10 files are checked against torchvision's MD5
sums; ``verify_checksums: false`` accepts files of the same format that differ (re-packed ones).
Images are resized to `resolution` (bilinear, antialiased) and kept as uint8 (N, C, R, R).
"""

from __future__ import annotations

import gzip
import zlib
import logging
import shutil
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_platform.data.base import DIGITS, Evaluation, TensorDataset
from gan_platform.errors import ConfigError, UserError

log = logging.getLogger(__name__)


def resize_images(x: Tensor, resolution: int, chunk: int = 4096) -> Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, R, R), bilinear with antialiasing, in chunks."""
    if resolution < 4:
        raise ConfigError(f"dataset.resolution must be at least 4, got {resolution}.")
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    out = [F.interpolate(x[i:i + chunk].float(), size=(resolution, resolution), mode="bilinear",
                         align_corners=False, antialias=True).round_().clamp_(0, 255).to(torch.uint8)
           for i in range(0, len(x), chunk)]
    return torch.cat(out)


def unpack_gz(raw: Path) -> None:
    """Unpack each ``X.gz`` in `raw` whose ``X`` is missing (torchvision reads only unpacked files)."""
    if not raw.is_dir():
        return
    for gz in sorted(raw.glob("*.gz")):
        target = gz.with_suffix("")
        if not target.exists():
            tmp = target.with_name(target.name + ".part")
            try:
                with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # cut short, or not gzip at all
                tmp.unlink(missing_ok=True)
                raise UserError(f"'{gz}' is not a complete gzip file ({e}): delete it and download it again "
                                "(dataset.download=true), or put the unpacked file beside it.") from e
            tmp.replace(target)


def _open(cls: Any, root: Path, train: bool, download: bool, where: Path, name: str) -> Any:
    """torchvision's dataset object, with its errors turned into one sentence naming `where`."""
    try:
        return cls(root=str(root), train=train, download=download)
    except RuntimeError as e:
        if download:
            raise UserError(f"{name} could not be downloaded into '{where}' ({str(e).splitlines()[0]}): check the "
                            "network, or put the files there yourself.") from e
        if "corrupt" in str(e) and where.exists() and any(where.iterdir()):
            raise UserError(f"The {name} files in '{where}' are incomplete or fail torchvision's checksums: replace "
                            "them (dataset.download=true), or set dataset.verify_checksums=false for re-packed files.") from e
        raise UserError(f"{name} is not in '{where}': set dataset.download=true to download it, or point "
                        f"dataset.root at the folder that holds it.") from e
    except OSError as e:  # network errors during download, unreadable files
        raise UserError(f"{name} could not be read or downloaded at '{where}' ({type(e).__name__}: {e}): check the "
                        "files or the network.") from e
    except (ValueError, EOFError) as e:  # a truncated or foreign file
        raise UserError(f"A {name} file in '{where}' is truncated or not in {name}'s format ({e}): replace it "
                        "(dataset.download=true fetches fresh copies).") from e


def _check_root(root: Optional[str]) -> Path:
    if not root:
        raise ConfigError("dataset.root is not set: add dataset.root=PATH, the folder that holds (or will hold) the files.")
    return Path(root).expanduser()


def _mnist_like(cls_name: str, name: str, folder: str, root: Optional[str], train: bool, download: bool,
                resolution: int, evaluation: Optional[Evaluation] = None) -> TensorDataset:
    import torchvision.datasets as tvd

    path = _check_root(root)
    unpack_gz(path / folder / "raw")
    ds = _open(getattr(tvd, cls_name), path, train, download, path / folder / "raw", name)
    x = resize_images(ds.data.unsqueeze(1).to(torch.uint8), resolution)
    return TensorDataset(name, x, ds.targets.to(torch.int64), num_classes=len(ds.classes), kind="images",
                         class_names=list(ds.classes), evaluation=evaluation)


def mnist(root: Optional[str] = "data", train: bool = True, download: bool = False, resolution: int = 32) -> TensorDataset:
    """MNIST handwritten digits: 60000 (train) or 10000 (test) 28x28 grey images, 10 classes."""
    return _mnist_like("MNIST", "mnist", "MNIST", root, train, download, resolution, evaluation=DIGITS)


def fashion_mnist(root: Optional[str] = "data", train: bool = True, download: bool = False,
                  resolution: int = 32) -> TensorDataset:
    """Fashion-MNIST: 60000 (train) or 10000 (test) 28x28 grey clothing images, 10 classes."""
    return _mnist_like("FashionMNIST", "fashion_mnist", "FashionMNIST", root, train, download, resolution)


def _cifar10_class(verify_checksums: bool) -> Any:
    from torchvision.datasets import CIFAR10

    if verify_checksums:
        return CIFAR10

    class CIFAR10SameFormat(CIFAR10):
        """torchvision's CIFAR10 with the per-file MD5 sums off (torchvision skips a check whose sum is None)."""

        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return CIFAR10SameFormat


def cifar10(root: Optional[str] = "data", train: bool = True, download: bool = False, resolution: int = 32,
            verify_checksums: bool = True) -> TensorDataset:
    """CIFAR-10: 50000 (train) or 10000 (test) 32x32 colour images, 10 classes."""
    path = _check_root(root)
    where = path / "cifar-10-batches-py"
    ds = _open(_cifar10_class(verify_checksums), path, train, download, where, "cifar10")
    x = resize_images(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), resolution)
    return TensorDataset("cifar10", x, torch.tensor(ds.targets, dtype=torch.int64), num_classes=len(ds.classes),
                         kind="images", class_names=list(ds.classes))
