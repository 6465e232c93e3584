"""Value model and conversions.

Runtime values are plain Python: ``None`` (null), ``bool``, ``int`` (long), ``float`` (real),
``str``, aware-UTC ``datetime``, ``timedelta`` (timespan), and ``dict``/``list`` (dynamic).
Dynamic containers built by the engine never hold ``datetime``/``timedelta`` objects (they are
stored as their KQL string forms), so only top-level column values need rendering on output.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

__all__ = [
    "compare", "equals", "format_datetime", "format_timespan", "gettype", "hash_key",
    "parse_datetime", "render", "to_bool", "to_datetime", "to_dynamic_element", "to_long",
    "to_real", "to_str",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_DT_RE = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*"
)


@lru_cache(maxsize=16384)
def parse_datetime(s: str) -> datetime | None:
    """ISO 8601 (``2024-05-01``, ``2024-05-01T10:11:12.1234567Z``, ``+02:00`` offsets, space
    separator) -> aware UTC datetime, or None. Fractions beyond microseconds are truncated
    (Python's resolution is 1 µs, ARM emits 100 ns ticks). A missing zone means UTC."""
    m = _DT_RE.fullmatch(s)
    if m is None:
        return None
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if tz and tz[0] in "+-":
        digits = tz[1:].replace(":", "")
        off = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        dt = dt.replace(tzinfo=timezone(off if tz[0] == "+" else -off)).astimezone(UTC)
    return dt


def format_datetime(dt: datetime) -> str:
    """KQL/ARG rendering: ``YYYY-MM-DDTHH:MM:SS.fffffffZ`` (always 7 fraction digits)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    elif dt.utcoffset():
        dt = dt.astimezone(UTC)
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{dt.microsecond:06d}0Z"


def format_timespan(td: timedelta) -> str:
    """KQL rendering ``[-][d.]hh:mm:ss[.fffffff]``."""
    total_us = td.days * 86_400_000_000 + td.seconds * 1_000_000 + td.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, micros = divmod(rem, 1_000_000)
    out = f"{sign}{days}." if days else sign
    out += f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    if micros:
        out += f".{micros:06d}0"
    return out


def _format_real(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _json_default(v: object) -> object:
    if isinstance(v, datetime):
        return format_datetime(v)
    if isinstance(v, timedelta):
        return format_timespan(v)
    raise TypeError(f"not JSON serializable: {type(v).__name__}")


def to_str(v: object) -> str:
    """KQL ``tostring()``: null -> "", bools -> "true"/"false", dynamic -> compact JSON."""
    cls = v.__class__
    if cls is str:
        return v  # type: ignore[return-value]
    if v is None:
        return ""
    if cls is bool:
        return "true" if v else "false"
    if cls is int:
        return str(v)
    if cls is float:
        return _format_real(v)  # type: ignore[arg-type]
    if cls is dict or cls is list:
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=_json_default)
    if cls is datetime:
        return format_datetime(v)  # type: ignore[arg-type]
    if cls is timedelta:
        return format_timespan(v)  # type: ignore[arg-type]
    return str(v)


_INT_RE = re.compile(r"\s*[+-]?\d+\s*")
_REAL_RE = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")


def to_real(v: object) -> float | None:
    cls = v.__class__
    if cls is float:
        return v  # type: ignore[return-value]
    if cls is int or cls is bool:
        return float(v)  # type: ignore[arg-type]
    if cls is str:
        if _REAL_RE.fullmatch(v):  # type: ignore[arg-type]
            return float(v)  # type: ignore[arg-type]
        low = v.strip().lower()  # type: ignore[union-attr]
        if low in ("nan", "+inf", "-inf", "inf", "infinity", "-infinity", "+infinity"):
            return float(low.replace("infinity", "inf"))
        return None
    return None


def to_long(v: object) -> int | None:
    """KQL ``tolong()``: decimals truncate toward zero; unparsable -> null."""
    cls = v.__class__
    if cls is int:
        return v  # type: ignore[return-value]
    if cls is bool:
        return int(v)  # type: ignore[arg-type]
    if cls is float:
        return int(v) if math.isfinite(v) else None  # type: ignore[arg-type]
    if cls is str:
        if _INT_RE.fullmatch(v):  # type: ignore[arg-type]
            return int(v)  # type: ignore[arg-type]
        r = to_real(v)
        return int(r) if r is not None and math.isfinite(r) else None
    return None


def to_bool(v: object) -> bool | None:
    cls = v.__class__
    if cls is bool:
        return v  # type: ignore[return-value]
    if cls is str:
        low = v.strip().lower()  # type: ignore[union-attr]
        if low == "true":
            return True
        if low == "false":
            return False
        n = to_long(v) if _INT_RE.fullmatch(v) else None  # type: ignore[arg-type]
        return None if n is None else n != 0
    if cls is int or cls is float:
        return v != 0 if not (cls is float and math.isnan(v)) else None  # type: ignore[arg-type]
    return None


def to_datetime(v: object) -> datetime | None:
    cls = v.__class__
    if cls is datetime:
        return v  # type: ignore[return-value]
    if cls is str:
        return parse_datetime(v)  # type: ignore[arg-type]
    return None


def to_dynamic_element(v: object) -> object:
    """A value as stored inside a dynamic array/bag built by the engine."""
    cls = v.__class__
    if cls is datetime:
        return format_datetime(v)  # type: ignore[arg-type]
    if cls is timedelta:
        return format_timespan(v)  # type: ignore[arg-type]
    return v


def gettype(v: object) -> str:
    """KQL ``gettype()`` names."""
    if v is None:
        return "null"
    cls = v.__class__
    return {
        str: "string", bool: "bool", int: "long", float: "real", dict: "dictionary",
        list: "array", datetime: "datetime", timedelta: "timespan",
    }.get(cls, "object")


def render(v: object) -> object:
    """Top-level output value: datetimes/timespans become their KQL strings."""
    cls = v.__class__
    if cls is datetime:
        return format_datetime(v)  # type: ignore[arg-type]
    if cls is timedelta:
        return format_timespan(v)  # type: ignore[arg-type]
    return v


def hash_key(v: object) -> object:
    """A hashable stand-in for grouping/joining/dedup (dynamic values compare by JSON text)."""
    cls = v.__class__
    if cls is dict or cls is list:
        return ("\0json", json.dumps(v, sort_keys=True, separators=(",", ":"), default=_json_default))
    if cls is float and v != v:  # NaN groups with NaN
        return ("\0nan",)
    if cls is bool:
        return ("\0bool", v)  # keep true apart from 1
    return v


# ----------------------------------------------------------------------------- comparisons

_NUM = (int, float)


def _coerce_pair(a: object, b: object) -> tuple[object, object] | None:
    """Bring two non-null values of different classes to a comparable pair, or None.

    Mirrors how KQL compares a dynamic value with a typed one: the string side is converted to the
    other side's type (number, datetime, bool); numbers compare numerically across int/real.
    """
    ca, cb = a.__class__, b.__class__
    if ca in (int, float) and cb in (int, float):
        return a, b
    if ca is str:
        if cb is int or cb is float:
            r = to_real(a)
            return None if r is None else (r, b)
        if cb is datetime:
            d = parse_datetime(a)  # type: ignore[arg-type]
            return None if d is None else (d, b)
        if cb is bool:
            t = to_bool(a) if a.strip().lower() in ("true", "false") else None  # type: ignore[union-attr]
            return None if t is None else (t, b)
        return None
    if cb is str:
        p = _coerce_pair(b, a)
        return None if p is None else (p[1], p[0])
    return None


def equals(a: object, b: object) -> bool | None:
    """KQL ``==``: null == null -> null; null vs value -> false; otherwise typed equality."""
    if a is None or b is None:
        return None if a is None and b is None else False
    ca, cb = a.__class__, b.__class__
    if ca is cb:
        return a == b
    if ca is bool or cb is bool:
        p = _coerce_pair(a, b) if (ca is str or cb is str) else None
        return False if p is None else p[0] == p[1]
    p = _coerce_pair(a, b)
    return False if p is None else p[0] == p[1]


def compare(a: object, b: object) -> int | None:
    """Three-way ordering for ``<``/``>``/sorting; None when the values are not comparable."""
    if a is None or b is None:
        return None
    ca, cb = a.__class__, b.__class__
    if ca is not cb:
        if ca is bool or cb is bool:
            return None
        p = _coerce_pair(a, b)
        if p is None:
            return None
        a, b = p
        ca = a.__class__
    if ca is dict or ca is list:
        return None
    try:
        return -1 if a < b else (1 if a > b else 0)  # type: ignore[operator]
    except TypeError:
        return None
