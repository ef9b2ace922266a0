"""Images per second delivered ready for G's step, the platform's datasets against torchvision's
ImageFolder; the memory of a streamed 3 GB set; the time to pack a folder with gan-dataset.

    python benchmarks/data_throughput.py                                  # everything (~15 min on 2 busy cores)
    python benchmarks/data_throughput.py --parts throughput --sizes 32
    python benchmarks/data_throughput.py --parts pack --stylegan-tool /tmp/dataset_tool.py   # against stylegan2-ada's tool
    python benchmarks/data_throughput.py --parts rss --rss-gb 3

Throughput: the script makes 20,000 images of 32 x 32 and 2,000 of 256 x 256 (smooth random
colour fields with noise, PNG files in 10 class folders, Pillow's default compression), packs each
folder with gan-dataset, and measures, each in a fresh child process, batches of 64 delivered as
float tensors in [-1, 1] on the training device (cuda if present, else the CPU): the zip held in
memory (`dataset=zip`), the zip streamed by 2 workers, the image folder (`dataset=image_folder`, in
memory), and torchvision's `ImageFolder` + `DataLoader` with the same 2 workers, `pin_memory` on a
GPU, persistent workers, ToTensor + Normalize(0.5, 0.5). Each rate is images / second over
`--batches` batches after `--warmup` batches; setup (loading into memory, starting workers) is
reported apart. The four loaders alternate over `--repeats` rounds and the medians are printed with
the ratios to torchvision measured in the same round.

RSS: a zip of `--rss-gb` GB of 256 x 256 PNGs (made in a temporary folder under /tmp, deleted
after) trains a small DCGAN streamed (`dataset.stream=auto` streams it, with the default 4
workers), and the same run on a zip of 64 such images held in memory is the reference; the peak
RSS of the training process and the peak sums of RSS and of PSS over it and its workers (RSS
counts the pages they share once per process, PSS divides them) are sampled every 0.2 s.

Decode: microseconds to decode one image, a plain PNG (what gan-dataset writes) against the same
pixels as Pillow writes them (what stylegan2-ada's tool writes).

Packing: gan-dataset on the 20,000-image folder (its default workers, and --workers 0), and
stylegan2-ada's dataset_tool.py (`--stylegan-tool PATH`, plain Python) on the same folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOADERS = ("zip_memory", "zip_stream", "folder", "torchvision")
SETS = {32: 20000, 256: 2000}  # side -> images


def make_images(root: Path, side: int, count: int, seed: int = 0) -> None:
    """`count` PNGs of side x side in 10 class folders: smooth colour fields (bicubic from 4 x 4) plus noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        field = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
        arr = np.clip(np.asarray(field, dtype=np.int16) + rng.integers(-12, 13, (side, side, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i:06d}.png")


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True, **kwargs)


def gan_dataset(source: Path, dest: Path, *extra: str) -> float:
    """Seconds to pack `source` into `dest` with gan-dataset, as a user runs it."""
    start = time.perf_counter()
    run([sys.executable, "-m", "gan_platform.data.pack", str(source), str(dest), "--quiet", "--overwrite", *extra])
    return time.perf_counter() - start


# -- one loader's rate, in a child process ------------------------------------------------------
def platform_batches(loader: str, folder: Path, zip_path: Path, side: int):
    import torch

    from gan_platform.data.folders import image_folder
    from gan_platform.data.packed.build import zip_dataset

    if loader == "folder":
        ds = image_folder(str(folder), resolution=side, stream=False)
    else:
        ds = zip_dataset(str(zip_path), stream=loader == "zip_stream", workers=2)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ds.to(device)
    g = torch.Generator(device=ds.device).manual_seed(0)
    while True:
        yield ds.sample(64, g)[0]


def torchvision_batches(folder: Path):
    import torch
    from torchvision import datasets, transforms

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(folder), transform=tf), batch_size=64, shuffle=True,
                                         num_workers=2, pin_memory=device.type == "cuda", drop_last=True,
                                         persistent_workers=True)
    while True:
        for x, _ in loader:
            yield x.to(device, non_blocking=True)


def child(loader: str, folder: Path, zip_path: Path, side: int, warmup: int, batches: int) -> dict:
    """Setup seconds (to the first batch) and images / second over `batches` batches after `warmup`."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    stream = torchvision_batches(folder) if loader == "torchvision" else platform_batches(loader, folder, zip_path, side)
    first = next(stream)
    assert first.dtype == torch.float32 and first.shape[0] == 64 and -1 <= float(first.min()) and float(first.max()) <= 1
    setup = time.perf_counter() - start
    for _ in range(warmup):
        next(stream)
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    sync()
    return {"setup_s": setup, "images_per_s": batches * 64 / (time.perf_counter() - start)}


def measure(loader: str, folder: Path, zip_path: Path, side: int, warmup: int, batches: int) -> dict:
    out = run([sys.executable, __file__, "--child", loader, str(folder), str(zip_path), str(side), str(warmup), str(batches)])
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(tmp: Path, sides: list[int], repeats: int, warmup: int, batches: int) -> None:
    for side in sides:
        folder, zip_path = tmp / f"images{side}", tmp / f"images{side}.zip"
        if not folder.exists():
            make_images(folder, side, SETS[side])
        gan_dataset(folder, zip_path)
        rounds = []
        for r in range(repeats):
            order = LOADERS if r % 2 == 0 else LOADERS[::-1]
            rounds.append({loader: measure(loader, folder, zip_path, side, warmup, batches) for loader in order})
        print(f"\n{SETS[side]} images of {side} x {side}, batches of 64, {batches} batches after {warmup} "
              f"(medians of {repeats} rounds)")
        print(f"{'loader':12} {'images/s':>10} {'x torchvision':>14} {'setup s':>8}")
        for loader in LOADERS:
            rate = statistics.median(x[loader]["images_per_s"] for x in rounds)
            ratio = statistics.median(x[loader]["images_per_s"] / x["torchvision"]["images_per_s"] for x in rounds)
            setup = statistics.median(x[loader]["setup_s"] for x in rounds)
            print(f"{loader:12} {rate:10.0f} {ratio:14.2f} {setup:8.1f}")


# -- memory of a streamed set -------------------------------------------------------------------
def noise_zip(path: Path, count: int) -> None:
    """A zip of `count` plain 256 x 256 noise PNGs (196 kB each), written by gan-dataset's own writer."""
    import numpy as np

    from gan_platform.data.pack.writer import ZipWriter
    from gan_platform.data.packed.png import encode_plain

    rng = np.random.default_rng(0)
    with ZipWriter(path) as writer:
        for i in range(count):
            writer.add(f"{i // 1000:05d}/img{i:08d}.png", encode_plain(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)),
                       None, str(i))
        writer.finish(None)


def tree_memory(proc) -> tuple[int, int, int]:
    """(RSS of `proc`, sum of RSS, sum of PSS over `proc` and its descendants), bytes."""
    import psutil

    procs = [proc] + proc.children(recursive=True)
    rss = pss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
            rss, pss = rss + info.rss, pss + info.pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return proc.memory_info().rss, rss, pss


def train_peak(tmp: Path, zip_path: Path, steps: int) -> tuple[float, tuple[int, int, int]]:
    """(seconds, peak memory as tree_memory) of a small DCGAN trained on `zip_path` from the command line."""
    import psutil

    run_dir = tmp / f"run_{zip_path.stem}"
    cmd = [sys.executable, "-m", "gan_platform", "+experiment=nsgan", "dataset=zip", f"dataset.path={zip_path}",
           "model=dcgan", "model.generator.width=8", "model.discriminator.width=8", "trainer.batch_size=16",
           f"trainer.steps={steps}", "trainer.progress=false", "trainer.sample_every=0", "trainer.checkpoint_every=0",
           "eval.enabled=false", "tracker=none", "report=false", f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched, peak = psutil.Process(proc.pid), (0, 0, 0)
    while proc.poll() is None:
        try:
            peak = tuple(max(a, b) for a, b in zip(peak, tree_memory(watched)))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    log = proc.communicate()[0]
    if proc.returncode:
        raise SystemExit(f"the run on {zip_path.name} failed:\n{log[-3000:]}")
    return time.perf_counter() - start, peak


def streamed_rss(tmp: Path, gigabytes: float, steps: int) -> None:
    """Peak memory training on a streamed set of `gigabytes`, against the same run on 64 images held in memory."""
    count = int(gigabytes * 1e9 / (256 * 256 * 3))
    start = time.perf_counter()
    noise_zip(tmp / "big.zip", count)
    noise_zip(tmp / "small.zip", 64)
    print(f"\nstreamed set: {count} PNGs of 256 x 256, {(tmp / 'big.zip').stat().st_size / 1e9:.2f} GB zip, made in "
          f"{time.perf_counter() - start:.0f} s; decoded {count * 196608 / 2**20:.0f} MB > dataset.stream_above_mb 2048, "
          "so dataset.stream=auto streams it (4 workers, the default)")
    print(f"{steps} steps of a DCGAN (width 8, batch 16); peak GiB: the training process, its RSS with its workers', "
          "their PSS")
    for name in ("small.zip", "big.zip"):
        seconds, peak = train_peak(tmp, tmp / name, steps)
        what = "64 images in memory" if name == "small.zip" else f"{count} images streamed"
        print(f"{what:24} {seconds:5.0f} s   {peak[0] / 2**30:5.2f}  {peak[1] / 2**30:5.2f}  {peak[2] / 2**30:5.2f}")


def decode_speed(tmp: Path) -> None:
    """Microseconds to decode one image to uint8 (C, R, R): a plain PNG by packed/png.py, and Pillow
    on the same image as Pillow writes it (stylegan2-ada's compress_level 0, with Pillow's row filters)."""
    import io

    import numpy as np
    from PIL import Image

    from gan_platform.data.packed.png import encode_plain
    from gan_platform.data.readers import decode_bytes

    rng = np.random.default_rng(0)
    print("\ndecoding one image, microseconds (median of 5 passes over 200 images)")
    for side in (32, 256):
        arrays = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(200)]
        plain = [encode_plain(a) for a in arrays]
        pillow = []
        for a in arrays:
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG", compress_level=0)
            pillow.append(buf.getvalue())
        rates = {}
        for name, data in (("plain", plain), ("pillow", pillow)):
            passes = []
            for _ in range(5):
                start = time.perf_counter()
                for d in data:
                    decode_bytes(d, side, 3)
                passes.append((time.perf_counter() - start) / len(data) * 1e6)
            rates[name] = statistics.median(passes)
        print(f"{side:3} x {side:<3}  plain PNG {rates['plain']:7.0f}   Pillow's PNG {rates['pillow']:7.0f}   "
              f"ratio {rates['pillow'] / rates['plain']:5.1f}")


# -- packing time --------------------------------------------------------------------------------
def packing(tmp: Path, stylegan_tool: str | None) -> None:
    folder = tmp / "images32"
    if not folder.exists():
        make_images(folder, 32, SETS[32])
    print(f"\npacking the {SETS[32]} images of 32 x 32 (seconds, 2 runs each, alternating)")
    times: dict[str, list[float]] = {}
    for _ in range(2):
        times.setdefault("gan-dataset", []).append(gan_dataset(folder, tmp / "a.zip"))
        times.setdefault("gan-dataset --workers 0", []).append(gan_dataset(folder, tmp / "b.zip", "--workers", "0"))
        if stylegan_tool:
            (tmp / "sg.zip").unlink(missing_ok=True)
            start = time.perf_counter()
            run([sys.executable, stylegan_tool, "--source", str(folder), "--dest", str(tmp / "sg.zip")])
            times.setdefault("stylegan2-ada dataset_tool.py", []).append(time.perf_counter() - start)
    for name, ts in times.items():
        print(f"{name:32} {' '.join(f'{t:6.1f}' for t in ts)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--parts", default="throughput,pack,rss,decode", help="throughput, pack, rss, decode (comma-separated)")
    p.add_argument("--sizes", default="32,256")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--rss-gb", type=float, default=3.0)
    p.add_argument("--rss-steps", type=int, default=30)
    p.add_argument("--stylegan-tool", help="path of stylegan2-ada's dataset_tool.py, to time it on the same folder")
    p.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        loader, folder, zip_path, side, warmup, batches = args.child
        print(json.dumps(child(loader, Path(folder), Path(zip_path), int(side), int(warmup), int(batches))))
        return
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    print(f"torch {torch.__version__}, torchvision loaders and the platform's on {device}")
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="data_throughput_") as tmp:
        if "throughput" in parts:
            throughput(Path(tmp), [int(s) for s in args.sizes.split(",")], args.repeats, args.warmup, args.batches)
        if "pack" in parts:
            packing(Path(tmp), args.stylegan_tool)
        if "rss" in parts:
            streamed_rss(Path(tmp), args.rss_gb, args.rss_steps)
        if "decode" in parts:
            decode_speed(Path(tmp))


if __name__ == "__main__":
    main()
