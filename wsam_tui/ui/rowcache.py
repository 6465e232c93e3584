"""The table's rows as last shown, saved beside the store, so that a start paints at once.

Deriving 50,000 servers from the store's raw documents takes seconds (every detector runs again); the
table needs only its display strings. After each load the console saves them here — one string per
text column (cells joined by newlines), the capability codes as one base64 block, fetch times for the
age column (recomputed against the clock at start, not frozen at save time) — and the next start
splits them back in tens of milliseconds, then derives the real snapshot in the background and
replaces these rows with it.

Derived data, never the source of truth: a file from another version, with other columns, damaged, or
with a character that is not printable is ignored (the normal load follows anyway). JSON, not pickle:
loading it runs no code. Written atomically, 0600, inside the store's 0700 directory.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import tempfile
from array import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wsam_tui.fleet.model import Server, State

from . import glyphs as g
from .table import ColumnSpec, TableData, _age, fit

FORMAT = 2
FILE_NAME = "table-rows.json"
_DERIVED = ("age",)  # text columns recomputed at load instead of saved


def save_rows(directory: Path, data: TableData, servers: Sequence[Server], meta: Mapping[str, Any]) -> None:
    """Write ``data`` (built from ``servers``, in the same order) and ``meta`` (JSON-able)."""
    text_cols = [c for c in data.layout if c.spec.capability is None]
    columns: dict[str, Any] = {}
    for col in text_cols:
        if col.spec.id in _DERIVED:
            continue
        cells = [row[col.slot] for row in data.cells]
        if col.spec.frozen:  # the name: nearly every value differs
            columns[col.spec.id] = "\n".join(cells)
            continue
        # Repetitive columns (kind, state, region, OS …): the distinct values and a code per row, which
        # reads back in milliseconds and makes the file a fifth of the size.
        distinct: dict[str, int] = {}
        codes = array("I", [distinct.setdefault(c, len(distinct)) for c in cells])
        columns[col.spec.id] = {"values": list(distinct), "codes": base64.b64encode(codes.tobytes()).decode("ascii")}
    fetched = [int(s.fetched_at.timestamp()) if s.fetched_at else 0 for s in servers]
    doc = {
        "format": FORMAT,
        "columns": [c.id for c in data.columns],
        "widths": {c.spec.id: c.width for c in text_cols},
        "glyphs": [data.glyphs[s] for s in g.STATES],
        "ids": "\n".join(data.ids),
        "cells": columns,
        "fetched": fetched,
        "states": base64.b64encode(b"".join(data.states)).decode("ascii"),
        "meta": dict(meta),
    }
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".table-rows-", dir=directory)  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        os.replace(tmp, directory / FILE_NAME)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_rows(directory: Path, columns: Sequence[ColumnSpec], glyphs: Mapping[State, str] = g.UNICODE, *,
              now: datetime | None = None) -> tuple[TableData, dict] | None:
    """The saved rows laid out for ``columns`` (None when absent, stale in format, or damaged)."""
    try:
        with open(directory / FILE_NAME, encoding="utf-8") as f:
            doc = json.load(f)
        return _restore(doc, columns, glyphs, now)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, binascii.Error):
        return None


def _restore(doc: dict, columns: Sequence[ColumnSpec], glyphs: Mapping[State, str],
             now: datetime | None) -> tuple[TableData, dict] | None:
    if doc.get("format") != FORMAT or doc["columns"] != [c.id for c in columns]:
        return None
    if doc["glyphs"] != [glyphs[s] for s in g.STATES]:
        return None
    if not doc["ids"].replace("\n", "").isprintable():
        return None
    ids = doc["ids"].split("\n") if doc["ids"] else []
    n = len(ids)
    widths: dict[str, int] = {k: int(v) for k, v in doc["widths"].items()}
    text_specs = [c for c in columns if c.capability is None]
    cap_count = len(columns) - len(text_specs)
    by_column: list[list[str]] = []
    for spec in text_specs:
        if spec.id in _DERIVED:
            by_column.append(_ages(doc["fetched"], widths[spec.id], spec, now))
            continue
        saved = doc["cells"][spec.id]
        if isinstance(saved, str):
            if not saved.replace("\n", "").isprintable():  # a damaged or tampered file: no control characters
                return None
            cells = saved.split("\n") if n else []
        else:  # distinct values (one object each, shared by the rows) and a code per row
            values = [str(v) for v in saved["values"]]
            if not "".join(values).isprintable():
                return None
            codes = array("I")
            codes.frombytes(base64.b64decode(saved["codes"], validate=True))
            cells = [values[c] for c in codes]  # a code out of range raises IndexError: the file is refused
        if len(cells) != n:
            return None
        by_column.append(cells)
    states_blob = base64.b64decode(doc["states"], validate=True)
    # Every byte a known state code: deleting those leaves nothing (in C; max() over 900 kB took 10 ms).
    if len(states_blob) != n * cap_count or states_blob.translate(None, bytes(range(len(g.STATES)))):
        return None
    states = [states_blob[i * cap_count:(i + 1) * cap_count] for i in range(n)]
    cells_by_row = list(zip(*by_column, strict=True)) if by_column else [()] * n
    layout = TableData._layout(columns, widths, glyphs)
    data = TableData(tuple(columns), layout, ids, {sid: i for i, sid in enumerate(ids)}, cells_by_row, states, glyphs)
    meta = doc.get("meta") or {}
    return data, meta if isinstance(meta, dict) else {}


def _ages(fetched: list, width: int, spec: ColumnSpec, now: datetime | None) -> list[str]:
    memo: dict[int, str] = {}
    out = []
    for ts in fetched:
        cell = memo.get(ts)
        if cell is None:
            when = datetime.fromtimestamp(int(ts), UTC) if ts else None
            cell = memo[ts] = fit(_age(when, now), width, spec.align) + " "
        out.append(cell)
    return out
