"""A published partition as one file that every API worker maps: SIREN-sorted, read-only, shared.

Each worker used to render and hold its own copy of the newest partition, so the server's memory
grew with the universe times the workers. Now the first worker that needs a partition writes this
file, block by block (its memory bounded by a block), and every worker maps it: the operating
system keeps one copy of its pages for all of them, and may drop them under pressure.

The file is an uncompressed Arrow IPC file, one record batch per block of SIRENs: the columns the
lists filter and sort on (read by polars without a copy), the SIRENs as int64 for the binary
search, and each company's answer as zlib-compressed JSON. The answers are compressed with a
preset dictionary of a few answers of the partition (kept in the file's metadata): they share
their keys, feature names and model versions, which a single answer is too short to exploit.
Figures: ``docs/benchmarks.md``.
"""

import ctypes
import ctypes.util
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from ma_pipeline.contracts.answers import company_json
from ma_pipeline.contracts.scores import SCORES

SCORE_COLUMNS = tuple(f"score_{s}" for s in SCORES)
RANK_COLUMNS = tuple(f"{kind}_{s}" for kind in ("rank", "band") for s in SCORES)
LIST_COLUMNS = (
    "siren",
    "nom_entreprise",
    "activite_principale",
    "departement",
    *SCORE_COLUMNS,
    *RANK_COLUMNS,
    "confidence",
)
FRAME_COLUMNS = (*LIST_COLUMNS, "naf_section", "naf_division", "region")
# Bumped when FRAME_COLUMNS change: a file written by an earlier release is never read again.
FILE_FORMAT = 2
KEY, ANSWER, DICTIONARY = "siren_key", "answer", b"zlib_dictionary"
ZLIB_LEVEL = 1  # the fastest: higher levels barely shrink answers this short
DICTIONARY_ANSWERS = 5  # answers sampled into the dictionary: more barely helps, and is slower
ZLIB_WINDOW = 32_768  # zlib reads no more of a dictionary than its window


class UnsortedPartition(ValueError):
    """Blocks that are not in strictly increasing SIREN order."""


def _answers(block: pl.DataFrame) -> list[bytes]:
    return [answer.encode() for answer in block.select(company_json()).to_series()]


def _dictionary(answers: list[bytes]) -> bytes:
    step = max(1, len(answers) // DICTIONARY_ANSWERS)
    return b"".join(answers[::step][:DICTIONARY_ANSWERS])[-ZLIB_WINDOW:]


def _deflate(answer: bytes, dictionary: bytes) -> bytes:
    compressor = zlib.compressobj(ZLIB_LEVEL, zdict=dictionary)
    return compressor.compress(answer) + compressor.flush()


def _batch(block: pl.DataFrame, answers: list[bytes], dictionary: bytes) -> pa.RecordBatch:
    deflated = pa.array([_deflate(a, dictionary) for a in answers], pa.large_binary())
    table = block.select(*FRAME_COLUMNS, pl.col("siren").cast(pl.Int64).alias(KEY)).to_arrow(
        compat_level=pl.CompatLevel.newest()
    )
    table = table.append_column(ANSWER, deflated)
    return pa.RecordBatch.from_arrays(
        [column.combine_chunks() for column in table.columns],
        schema=table.schema.with_metadata({DICTIONARY: dictionary}),
    )


def write_partition_file(blocks: Iterable[pl.DataFrame], path: Path) -> int:
    """Write the blocks of a published partition (SIREN-sorted, the first one possibly empty) to
    ``path``, atomically; return the rows written. Memory holds one block at a time."""
    partial = path.with_name(f"{path.name}.partial")
    rows, last, empty = 0, "", None
    try:
        with pa.OSFile(str(partial), "wb") as sink:
            writer: pa.ipc.RecordBatchFileWriter | None = None
            dictionary = b""
            for block in blocks:
                if not block.height:
                    empty = block
                    continue
                sirens = block["siren"]
                if not sirens.is_sorted() or sirens[0] <= last:
                    raise UnsortedPartition(
                        f"{path.name}: the published rows are not in increasing SIREN order"
                        f" (block starting at {sirens[0]})"
                    )
                answers = _answers(block)
                if writer is None:
                    dictionary = _dictionary(answers)
                batch = _batch(block, answers, dictionary)
                if writer is None:
                    writer = pa.ipc.new_file(sink, batch.schema)
                writer.write_batch(batch)
                rows, last = rows + block.height, sirens[-1]
            if writer is None:
                if empty is None:
                    raise ValueError(f"{path.name}: the store gave no block, not even an empty one")
                writer = pa.ipc.new_file(sink, _batch(empty, [], dictionary).schema)
            writer.close()
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
        _release_memory()
    return rows


def _release_memory() -> None:
    """Hand the memory the writing freed back to the operating system: Arrow's pool and the C
    allocator keep freed memory for reuse, and the worker that wrote the file would hold it for
    the rest of its life."""
    pa.default_memory_pool().release_unused()
    libc = ctypes.util.find_library("c")
    if libc is not None and hasattr(ctypes.CDLL(libc), "malloc_trim"):  # glibc only
        ctypes.CDLL(libc).malloc_trim(0)


@dataclass(frozen=True)
class _Block:
    keys: np.ndarray  # int64, sorted
    offsets: np.ndarray  # int64, keys + 1: answer i is data[offsets[i]:offsets[i + 1]]
    data: memoryview


class PartitionFile:
    """A partition file mapped read-only: the list columns as a polars frame over the mapped
    pages, and each company's answer by SIREN."""

    def __init__(self, path: Path) -> None:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        self.path = path
        self.frame = pl.from_arrow(table.drop_columns([ANSWER]))
        self._dictionary = (table.schema.metadata or {}).get(DICTIONARY, b"")
        self._blocks = [_block(batch) for batch in table.to_batches() if batch.num_rows]
        self._firsts = np.array([b.keys[0] for b in self._blocks], dtype=np.int64)

    @property
    def rows(self) -> int:
        return self.frame.height

    def answer(self, siren: str) -> bytes | None:
        """The company's answer (JSON), or None when it is not in the partition."""
        key = int(siren)
        index = int(self._firsts.searchsorted(key, side="right")) - 1
        if index < 0:
            return None
        block = self._blocks[index]
        row = int(block.keys.searchsorted(key))
        if row == len(block.keys) or block.keys[row] != key:
            return None
        inflater = zlib.decompressobj(zdict=self._dictionary)
        answer = inflater.decompress(block.data[block.offsets[row] : block.offsets[row + 1]])
        return answer + inflater.flush()


def _block(batch: pa.RecordBatch) -> _Block:
    keys = batch.column(KEY)
    answers = batch.column(ANSWER)
    _, offsets, data = answers.buffers()
    return _Block(
        np.frombuffer(keys.buffers()[1], np.int64)[keys.offset : keys.offset + len(keys)],
        np.frombuffer(offsets, np.int64)[answers.offset : answers.offset + len(answers) + 1],
        memoryview(data),
    )


def remove_stale(directory: Path, keep: set[str]) -> None:
    """Delete the files of ``directory`` but the partition files named in ``keep``; called under
    the directory's lock, so no write is under way. A worker that still maps a deleted file
    keeps reading it: its pages stay until the worker unmaps them."""
    for path in [*directory.glob("*.arrow"), *directory.glob("*.partial")]:
        if path.name not in keep:
            path.unlink(missing_ok=True)
