"""Log-spaced histograms for latencies, small enough to store on every rollup row.

Bucket 0 holds values below 1 ms; bucket i ≥ 1 holds [RATIO**(i-1), RATIO**i) ms, up to
bucket MAX_INDEX, which also takes everything larger (≈ 25 minutes and beyond).
A percentile is read as the geometric middle of the bucket holding the nearest-rank value,
so for values between 1 ms and RATIO**(MAX_INDEX-1) ms the answer is within
sqrt(RATIO) - 1 (4.9 % for RATIO 1.1) of the exact nearest-rank percentile; below 1 ms it is
within 0.5 ms.

Stored sparse as little-endian (uint8 index, uint32 count) pairs: a typical row holds a
handful of buckets, so 5 bytes each instead of 150 columns.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

RATIO = 1.1
MAX_INDEX = 150
RELATIVE_ERROR_BOUND = math.sqrt(RATIO) - 1  # 0.0488…
_LOG_RATIO = math.log(RATIO)
_PAIR = struct.Struct("<BI")

Hist = dict[int, int]


def bucket_index(value_ms: float) -> int:
    if value_ms < 1.0:
        return 0
    return min(MAX_INDEX, int(math.log(value_ms) / _LOG_RATIO) + 1)


def bucket_value(index: int) -> float:
    """The value reported for a bucket: its geometric middle (0.5 ms for the first)."""
    if index <= 0:
        return 0.5
    return RATIO ** (index - 1) * math.sqrt(RATIO)


def hist_add(hist: Hist, value_ms: float) -> None:
    i = bucket_index(value_ms)
    hist[i] = hist.get(i, 0) + 1


def hist_merge(into: Hist, other: Hist) -> Hist:
    for i, c in other.items():
        into[i] = into.get(i, 0) + c
    return into


def hist_merge_encoded(into: Hist, data: bytes | memoryview | None) -> Hist:
    if data:
        for i, c in _PAIR.iter_unpack(data):
            into[i] = into.get(i, 0) + c
    return into


def hist_encode(hist: Hist) -> bytes:
    return b"".join(_PAIR.pack(i, c) for i, c in sorted(hist.items()) if c)


def hist_decode(data: bytes | memoryview | None) -> Hist:
    return hist_merge_encoded({}, data)


def hist_percentiles(hist: Hist, percents: Iterable[float]) -> list[float | None]:
    """Nearest-rank percentiles (rank ceil(p/100 × n)); None for an empty histogram."""
    wanted = list(percents)
    total = sum(hist.values())
    if total <= 0:
        return [None for _ in wanted]
    ranks = [max(1, math.ceil(p / 100 * total)) for p in wanted]
    out: list[float | None] = [None] * len(wanted)
    seen = 0
    for i in sorted(hist):
        seen += hist[i]
        for n, rank in enumerate(ranks):
            if out[n] is None and seen >= rank:
                out[n] = bucket_value(i)
    return out
