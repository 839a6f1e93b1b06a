"""Turning the generator's arrays into contract-typed pandas frames.

Inside the generator, times are int64 seconds since 1970-01-01 (naive UTC) with
:data:`NULL_S` for null, categories are integer codes with -1 for null, and entities refer
to each other by integer position; only here do they become strings and datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from data_contracts.spec import TableSpec
from data_contracts.storage import PANDAS_DTYPES

NULL_S = np.iinfo(np.int64).min


def id_strings(prefix: str, n: int, width: int) -> pa.Array:
    """``prefix`` + 1-based numbers zero-padded to ``width`` (wider when ``n`` needs it).

    Built as one fixed-width byte buffer (fast for tens of millions of ids), as
    ``large_string``, the storage of pandas' ``str`` dtype, so frames take it without a copy.
    """
    width = max(width, len(str(n)))
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    size = len(head) + width
    chars = np.empty((n, size), dtype=np.uint8)
    chars[:, : len(head)] = head
    for place in range(width):  # digit of 10**place of the numbers 1..n, without division
        block = np.repeat(np.arange(48, 58, dtype=np.uint8), 10**place)
        column = np.tile(block, -(-(n + 1) // len(block)))[1 : n + 1]
        chars[:, size - 1 - place] = column
    offsets = np.arange(0, (n + 1) * size, size, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(chars.reshape(-1))
    )


def take(values: pa.Array | Sequence[str], index: np.ndarray) -> pa.Array:
    """``values[index]`` as a ``large_string`` array; ``index == -1`` gives null."""
    arr = values if isinstance(values, pa.Array) else pa.array(list(values))
    arr = arr.cast(pa.large_string())  # pandas' "str" storage; no copy when already large
    idx = pa.array(np.where(index < 0, 0, index).astype(np.int64), mask=index < 0)
    return arr.take(idx)


def datetimes(t_s: np.ndarray) -> np.ndarray:
    """int64 seconds (``NULL_S`` for null) → ``datetime64[us]`` with NaT."""
    out = (np.where(t_s == NULL_S, 0, t_s) * 1_000_000).astype("datetime64[us]")
    out[t_s == NULL_S] = np.datetime64("NaT")
    return out


def dates(day: np.ndarray) -> np.ndarray:
    """int64 days since 1970-01-01 (``NULL_S`` for null) → midnight ``datetime64[us]``."""
    return datetimes(np.where(day == NULL_S, NULL_S, day * 86_400))


def typed_frame(spec: TableSpec, columns: Mapping[str, object]) -> pd.DataFrame:
    """A frame with exactly ``spec``'s columns, in order, in their storage dtypes.

    ``columns`` must provide every column of ``spec`` (pyarrow arrays for strings, NumPy
    arrays otherwise); raises ``KeyError`` naming what is missing or unexpected.
    """
    missing = [c for c in spec.column_names if c not in columns]
    extra = [c for c in columns if c not in spec.column_names]
    if missing or extra:
        raise KeyError(f"table {spec.name!r}: missing columns {missing}, unexpected {extra}")
    data = {}
    for col in spec.columns:
        dtype = PANDAS_DTYPES[col.dtype]
        values = columns[col.name]
        if isinstance(values, pa.Array | pa.ChunkedArray):
            data[col.name] = pd.array(values, dtype=dtype)
        else:
            data[col.name] = pd.array(np.asarray(values), dtype=dtype)
    return pd.DataFrame(data, copy=False)
