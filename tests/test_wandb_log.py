"""W&B's offline files, read by an independent reader (tests/helpers/wandb_log.py) that checks every record's
CRC-32 and the 32 KiB block framing: a real run's file passes and reads as the platform reads it; a
flipped byte is caught; and a file cut at every byte offset of its last record (what a kill leaves)
reads as all the records before it, by both readers, and `settle_parts` cuts it back exactly there."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import TINY, train
from gan_platform.tracking.wandb_files import payloads, settle_parts
from helpers.wandb_log import BLOCK, FIRST, LAST, FormatError, _fragments, record_starts, records
from helpers.wandb_offline import offline_runs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wandb_file(tmp_path_factory) -> bytes:
    """A real offline run long enough to fill several blocks (one history record a step)."""
    home = tmp_path_factory.mktemp("wandb_home")
    run_dir = tmp_path_factory.mktemp("wandb_log") / "run"
    with pytest.MonkeyPatch.context() as env:  # W&B's settings and caches in a scratch folder, for this run only
        for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
            env.setenv(var, str(home))
        train(run_dir, [o for o in TINY if not o.startswith("tracker=")] + [
            "tracker=wandb", "dataset=ring8", "model=mlp", "model.generator.hidden=16", "model.discriminator.hidden=16",
            "trainer.steps=150", "trainer.log_every=1", "trainer.sample_every=0", "eval.every=50", "eval.num_samples=200"])
    (path,) = offline_runs(run_dir)
    return whole_file(path)


def whole_file(path: Path, timeout: float = 60.0) -> bytes:
    """The file once W&B's service has written its last record: `wandb.finish` can return while the
    service still writes the tail (seen on a loaded machine: the file ended inside a split record
    for a moment), so a strict reader waits for the file to end on a record's end."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        data = path.read_bytes()
        try:
            records(data)
            return data
        except FormatError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_real_run_file_checks_record_by_record_and_reads_as_the_platform_reads_it(wandb_file):
    assert len(wandb_file) > 2 * BLOCK  # several blocks
    kinds = [kind for _, kind, _ in _fragments(wandb_file, allow_cut=False)]
    assert FIRST in kinds and LAST in kinds  # records split across block ends
    whole = records(wandb_file)
    assert len(whole) > 150 and list(payloads(wandb_file)) == whole


def test_a_flipped_byte_or_a_broken_block_is_caught(wandb_file):
    start = record_starts(wandb_file)[len(record_starts(wandb_file)) // 2]
    flipped = bytearray(wandb_file)
    flipped[start + 9] ^= 0x40  # inside that record's data
    with pytest.raises(FormatError, match=f"checksum mismatch at {start}"):
        records(bytes(flipped))
    with pytest.raises(FormatError, match="no W&B file header"):
        records(b":W&C" + wandb_file[4:])


def test_a_file_cut_at_every_offset_of_its_last_record_reads_as_the_records_before_it(wandb_file, tmp_path):
    start = record_starts(wandb_file)[-1]
    before = records(wandb_file)[:-1]
    part = tmp_path / "wandb" / "offline-run-20260101_000000-abcd1234" / "run-abcd1234.wandb"
    part.parent.mkdir(parents=True)
    for cut in range(start + 1, len(wandb_file)):
        data = wandb_file[:cut]
        assert records(data, allow_cut=True) == before, cut
        assert list(payloads(data)) == before, cut
        with pytest.raises(FormatError):
            records(data)  # strictly, a cut file is not whole
        part.write_bytes(data)
        settle_parts(tmp_path / "wandb", "abcd1234")
        assert part.read_bytes() == wandb_file[:start], cut  # cut back to its last whole record
        assert records(part.read_bytes()) == before
