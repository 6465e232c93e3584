"""Scalar functions and aggregation functions.

Each scalar function is a *builder*: given the compiled argument expressions it returns one
compiled expression (a closure over a row). Argument counts and constant arguments are checked
once, at compile time; pure functions of constants are folded.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import KqlError
from .lexer import parse_timespan_text
from .values import (
    compare,
    gettype,
    hash_key,
    to_bool,
    to_datetime,
    to_dynamic_element,
    to_long,
    to_real,
    to_str,
)

Fn = Callable[[dict], object]

# The query's "now": constant within one run (as in KQL), set by the executor.
NOW: ContextVar[datetime] = ContextVar("kql_now")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class CE:
    """A compiled scalar expression."""

    fn: Fn
    type: str  # string | long | real | bool | datetime | timespan | dynamic | any
    const: bool = False
    value: object = None
    name: str | None = None  # column name derived from the expression (for default naming)
    column: str | None = None  # set when the expression is a plain column read (fast paths)


def const(value: object, typ: str) -> CE:
    if value.__class__ in (dict, list):
        # A fresh copy per evaluation: output rows must not share one mutable object.
        return CE(lambda r, _v=value: copy.deepcopy(_v), typ, True, value)
    return CE(lambda r, _v=value: _v, typ, True, value)


class FuncError(Exception):
    """Raised by builders; the compiler turns it into a positioned KqlError."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message


def _arity(name: str, args: list[CE], lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    if not (lo <= len(args) <= hi):
        want = str(lo) if lo == hi else (f"{lo} or more" if hi >= 99 else f"{lo} to {hi}")
        raise FuncError("InvalidQuery", f"function '{name}' expects {want} argument(s), got {len(args)}")


def _lift(name: str, impl: Callable, args: list[CE], typ: str, pure: bool = True) -> CE:
    """Wrap ``impl(*values)`` as a compiled expression, folding constants."""
    if pure and all(a.const for a in args):
        return const(impl(*[a.value for a in args]), typ)
    n = len(args)
    if n == 1:
        a = args[0].fn

        def f1(r):
            return impl(a(r))

        return CE(f1, typ)
    if n == 2:
        a, b = args[0].fn, args[1].fn

        def f2(r):
            return impl(a(r), b(r))

        return CE(f2, typ)
    if n == 3:
        a, b, c = args[0].fn, args[1].fn, args[2].fn

        def f3(r):
            return impl(a(r), b(r), c(r))

        return CE(f3, typ)
    fns = [x.fn for x in args]

    def fn_(r):
        return impl(*[g(r) for g in fns])

    return CE(fn_, typ)


def _need_const(name: str, arg: CE, what: str) -> object:
    if not arg.const:
        raise FuncError("InvalidQuery", f"function '{name}': {what} must be a constant")
    return arg.value


# ----------------------------------------------------------------------------- implementations


def _toint(v: object) -> int | None:
    n = to_long(v)
    if n is None or not (-(2**31) <= n < 2**31):
        return None
    return n


def _totimespan(v: object) -> timedelta | None:
    if v.__class__ is timedelta:
        return v  # type: ignore[return-value]
    if v.__class__ is str:
        return parse_timespan_text(v)  # type: ignore[arg-type]
    return None


def _tolower(v: object) -> str:
    return to_str(v).lower()


def _toupper(v: object) -> str:
    return to_str(v).upper()


def _strlen(v: object) -> int:
    return len(to_str(v))


def _isempty(v: object) -> bool:
    return v is None or v == ""


def _isnotempty(v: object) -> bool:
    return not (v is None or v == "")


def _isnull(v: object) -> bool:
    return v is None


def _isnotnull(v: object) -> bool:
    return v is not None


def _not(v: object) -> bool | None:
    if v is True:
        return False
    if v is False:
        return True
    return None


def _array_length(v: object) -> int | None:
    return len(v) if v.__class__ is list else None  # type: ignore[arg-type]


def _bag_keys(v: object) -> list | None:
    return list(v) if v.__class__ is dict else None  # type: ignore[call-overload]


def _parse_json(v: object) -> object:
    if v.__class__ is str:
        try:
            return json.loads(v)  # type: ignore[arg-type]
        except ValueError:
            return v  # KQL: an invalid JSON string stays a (dynamic) string
    return to_dynamic_element(v)


def _substring(s: object, start: object, length: object = None) -> str | None:
    text = to_str(s)
    st = to_long(start)
    if st is None:
        return None
    st = max(st, 0)
    if length is None:
        return text[st:]
    ln = to_long(length)
    if ln is None:
        return None
    return text[st : st + max(ln, 0)]


def _indexof(s: object, lookup: object) -> int:
    return to_str(s).find(to_str(lookup))


def _replace_string(s: object, lookup: object, rep: object) -> str:
    lk = to_str(lookup)
    return to_str(s).replace(lk, to_str(rep)) if lk else to_str(s)


def _strcat_array(arr: object, delim: object) -> str | None:
    if arr.__class__ is not list:
        return None
    return to_str(delim).join(to_str(x) for x in arr)  # type: ignore[attr-defined]


def _abs(v: object) -> object:
    if v.__class__ in (int, float, timedelta):
        return abs(v)  # type: ignore[arg-type]
    return None


def _bin(v: object, size: object) -> object:
    """``bin(x, size)``: round down to a multiple of size (numbers, datetimes, timespans)."""
    if v is None or size is None:
        return None
    cv, cs = v.__class__, size.__class__
    if cv in (int, float) and cs in (int, float):
        if size <= 0:  # type: ignore[operator]
            return None
        q = math.floor(v / size) * size  # type: ignore[operator]
        return int(q) if cv is int and cs is int else float(q)
    if cs is timedelta and size > timedelta(0):  # type: ignore[operator]
        if cv is datetime:
            return _EPOCH + ((v - _EPOCH) // size) * size  # type: ignore[operator]
        if cv is timedelta:
            return (v // size) * size  # type: ignore[operator]
    return None


# ----------------------------------------------------------------------------- builders

Builder = Callable[[str, list[CE]], CE]
SCALARS: dict[str, Builder] = {}


def _simple(names: str, lo: int, hi: int | None, typ: str, impl: Callable) -> None:
    def build(name: str, args: list[CE]) -> CE:
        _arity(name, args, lo, hi)
        return _lift(name, impl, args, typ)

    for n in names.split():
        SCALARS[n] = build


_simple("tostring", 1, 1, "string", to_str)
_simple("tolower", 1, 1, "string", _tolower)
_simple("toupper", 1, 1, "string", _toupper)
_simple("toint", 1, 1, "long", _toint)
_simple("tolong", 1, 1, "long", to_long)
_simple("toreal todouble", 1, 1, "real", to_real)
_simple("tobool toboolean", 1, 1, "bool", to_bool)
_simple("todatetime", 1, 1, "datetime", to_datetime)
_simple("totimespan totime", 1, 1, "timespan", _totimespan)
_simple("isempty", 1, 1, "bool", _isempty)
_simple("isnotempty", 1, 1, "bool", _isnotempty)
_simple("isnull", 1, 1, "bool", _isnull)
_simple("isnotnull", 1, 1, "bool", _isnotnull)
_simple("not", 1, 1, "bool", _not)
_simple("array_length", 1, 1, "long", _array_length)
_simple("bag_keys", 1, 1, "dynamic", _bag_keys)
_simple("parse_json todynamic", 1, 1, "dynamic", _parse_json)
_simple("strlen", 1, 1, "long", _strlen)
_simple("substring", 2, 3, "string", _substring)
_simple("indexof", 2, 2, "long", _indexof)
_simple("replace_string", 3, 3, "string", _replace_string)
_simple("strcat_array", 2, 2, "string", _strcat_array)
_simple("gettype", 1, 1, "string", gettype)
_simple("abs", 1, 1, "any", _abs)
_simple("bin floor", 2, 2, "any", _bin)


def _b_strcat(name: str, args: list[CE]) -> CE:
    _arity(name, args, 1, 64)

    def impl(*vals):
        return "".join([to_str(v) for v in vals])

    return _lift(name, impl, args, "string")


def _b_coalesce(name: str, args: list[CE]) -> CE:
    _arity(name, args, 2, 64)

    def impl(*vals):
        for v in vals:
            if v is not None and v != "":  # KQL: first non-null (non-empty for strings)
                return v
        return vals[-1] if vals[-1] is not None else None

    return _lift(name, impl, args, args[0].type)


def _b_iff(name: str, args: list[CE]) -> CE:
    _arity(name, args, 3)
    c, a, b = args[0].fn, args[1].fn, args[2].fn
    if args[0].const:
        return args[1] if args[0].value is True else args[2]

    def f(r):
        return a(r) if c(r) is True else b(r)

    return CE(f, args[1].type if args[1].type == args[2].type else "any")


def _b_case(name: str, args: list[CE]) -> CE:
    if len(args) < 3 or len(args) % 2 == 0:
        raise FuncError("InvalidQuery", "function 'case' expects predicate/value pairs followed by an else value")
    pairs = [(args[i].fn, args[i + 1].fn) for i in range(0, len(args) - 1, 2)]
    other = args[-1].fn

    def f(r):
        for p, v in pairs:
            if p(r) is True:
                return v(r)
        return other(r)

    types = {args[i].type for i in range(1, len(args), 2)} | {args[-1].type}
    return CE(f, types.pop() if len(types) == 1 else "any")


def _b_split(name: str, args: list[CE]) -> CE:
    _arity(name, args, 2, 3)
    if args[1].const and to_str(args[1].value) == "":
        raise FuncError("InvalidQuery", "function 'split': the delimiter must not be empty")

    def impl(s, sep, idx=None):
        sep_s = to_str(sep)
        if not sep_s:
            return None
        parts = to_str(s).split(sep_s)
        if idx is None:
            return parts
        i = to_long(idx)
        if i is None:
            return None
        # KQL: with an index, split returns a one-element array (or an empty one when out of range).
        if i < 0:
            i += len(parts)
        return [parts[i]] if 0 <= i < len(parts) else []

    return _lift(name, impl, args, "dynamic")


def _b_now(name: str, args: list[CE]) -> CE:
    _arity(name, args, 0, 1)
    if args:
        off = args[0]
        if off.type not in ("timespan", "any", "dynamic") or (off.const and off.value.__class__ is not timedelta):
            raise FuncError("InvalidQuery", "function 'now' expects a timespan offset")
        g = off.fn
        return CE(lambda r: _add_td(NOW.get(), g(r)), "datetime")
    get = NOW.get
    return CE(lambda r: get(), "datetime")


def _add_td(dt: datetime, td: object) -> datetime | None:
    return dt + td if td.__class__ is timedelta else None  # type: ignore[operator]


def _b_ago(name: str, args: list[CE]) -> CE:
    _arity(name, args, 1)
    a = args[0]
    if a.type not in ("timespan", "any", "dynamic"):
        raise FuncError("InvalidQuery", "function 'ago' expects a timespan such as 1d, 3h or 30m")
    get = NOW.get
    if a.const:
        td = a.value
        if td is None:
            return const(None, "datetime")
        if td.__class__ is not timedelta:
            raise FuncError("InvalidQuery", "function 'ago' expects a timespan such as 1d, 3h or 30m")
        return CE(lambda r: get() - td, "datetime")
    g = a.fn

    def f(r):
        v = g(r)
        return get() - v if v.__class__ is timedelta else None

    return CE(f, "datetime")


def _b_trim(name: str, args: list[CE]) -> CE:
    _arity(name, args, 2)
    pattern = _need_const(name, args[0], "the regular expression")
    try:
        p = f"(?:{to_str(pattern)})"
        lead = re.compile(r"\A" + p + "+") if name in ("trim", "trim_start") else None
        trail = re.compile(p + r"+\Z") if name in ("trim", "trim_end") else None
    except re.error as e:
        raise FuncError("InvalidQuery", f"function '{name}': invalid regular expression: {e}") from e

    def impl(s):
        out = to_str(s)
        if lead is not None:
            out = lead.sub("", out, count=1)
        if trail is not None:
            out = trail.sub("", out, count=1)
        return out

    return _lift(name, impl, [args[1]], "string")


# Static types whose values are never datetime/timespan objects (no conversion needed in dynamic values).
PLAIN_TYPES = frozenset({"dynamic", "string", "long", "real", "bool"})


def _b_pack(name: str, args: list[CE]) -> CE:
    if len(args) % 2:
        raise FuncError("InvalidQuery", f"function '{name}' expects key/value pairs")
    for k in args[0::2]:
        if k.type not in ("string", "any", "dynamic"):
            raise FuncError("InvalidQuery", f"function '{name}': keys must be strings")
    keys, vals = args[0::2], args[1::2]
    if all(k.const for k in keys) and not all(v.const for v in vals):
        # Constant keys (the usual case): generate one dict display.
        ns: dict = {"_e": to_dynamic_element}
        parts = []
        for i, (k, v) in enumerate(zip(keys, vals, strict=True)):
            ns[f"_v{i}"] = v.fn
            expr = f"_v{i}(r)" if v.type in PLAIN_TYPES else f"_e(_v{i}(r))"
            parts.append(f"{to_str(k.value)!r}: {expr}")
        exec("def pack(r):\n    return {" + ", ".join(parts) + "}", ns)
        return CE(ns["pack"], "dynamic")

    def impl(*vals):
        return {to_str(vals[i]): to_dynamic_element(vals[i + 1]) for i in range(0, len(vals), 2)}

    return _lift(name, impl, args, "dynamic")


def _b_pack_array(name: str, args: list[CE]) -> CE:
    _arity(name, args, 1, 64)

    def impl(*vals):
        return [to_dynamic_element(v) for v in vals]

    return _lift(name, impl, args, "dynamic")


SCALARS.update({
    "strcat": _b_strcat,
    "coalesce": _b_coalesce,
    "iff": _b_iff,
    "iif": _b_iff,
    "case": _b_case,
    "split": _b_split,
    "now": _b_now,
    "ago": _b_ago,
    "trim": _b_trim,
    "trim_start": _b_trim,
    "trim_end": _b_trim,
    "bag_pack": _b_pack,
    "pack": _b_pack,
    "pack_array": _b_pack_array,
})


# ----------------------------------------------------------------------------- aggregates


@dataclass(slots=True)
class Agg:
    """A compiled aggregation: ``compute(rows) -> value`` over one group's rows."""

    compute: Callable[[list], object]
    default_name: str
    type: str


def _agg_sum(vals: list) -> object:
    total: int | float = 0
    for v in vals:
        c = v.__class__
        if c is int or c is float:
            total += v
        elif c is str:
            x = to_real(v)
            if x is not None:
                total += x
    return total


def _agg_minmax(want: int) -> Callable[[list], object]:
    def pick(vals: list) -> object:
        best = None
        for v in vals:
            if v is None:
                continue
            if best is None:
                best = v
                continue
            c = compare(v, best)
            if c == want:
                best = v
        return best

    return pick


def _hashable(values: list) -> list:
    return [hash_key(v) for v in values]


def build_aggregate(name: str, args: list[CE], arg_names: list[str | None]) -> Agg:
    """Compile one aggregation call. ``arg_names`` are the derived names of the arguments."""
    n0 = arg_names[0] if arg_names else None
    suffix = n0 or ""

    def one(fname: str, lo: int = 1, hi: int = 1) -> Fn:
        _arity(fname, args, lo, hi)
        return args[0].fn

    if name == "count":
        if args:
            raise FuncError("UnsupportedFunction", "count(expr) is not supported; use count() or countif(isnotnull(expr))")
        return Agg(len, "count_", "long")
    if name == "countif":
        p = one(name)
        if args[0].type not in ("bool", "any", "dynamic"):
            raise FuncError("InvalidQuery", "countif() expects a boolean predicate")
        return Agg(lambda rows: sum(1 for r in rows if p(r) is True), "countif_", "long")
    if name == "dcount":
        f = one(name, 1, 2)
        if len(args) == 2:
            _need_const(name, args[1], "the accuracy level")

        def dcount(rows):
            return len({hash_key(v) for r in rows if (v := f(r)) is not None})

        return Agg(dcount, f"dcount_{suffix}", "long")
    if name in ("make_list", "make_set"):
        f = one(name, 1, 2)
        limit = 1048576
        if len(args) == 2:
            lv = to_long(_need_const(name, args[1], "the maximum size"))
            if lv is None or lv < 1:
                raise FuncError("InvalidQuery", f"function '{name}': the maximum size must be a positive integer")
            limit = lv
        if name == "make_list":

            if args[0].type in PLAIN_TYPES:
                def make_list(rows):
                    out = [v for r in rows if (v := f(r)) is not None]
                    return out if len(out) <= limit else out[:limit]
            else:
                def make_list(rows):
                    out = [to_dynamic_element(v) for r in rows if (v := f(r)) is not None]
                    return out if len(out) <= limit else out[:limit]

            return Agg(make_list, f"list_{suffix}", "dynamic")

        def make_set(rows):
            seen: set = set()
            out = []
            for r in rows:
                v = f(r)
                if v is None:
                    continue
                k = hash_key(v)
                if k in seen:
                    continue
                seen.add(k)
                out.append(to_dynamic_element(v))
                if len(out) >= limit:
                    break
            return out

        return Agg(make_set, f"set_{suffix}", "dynamic")
    if name in ("any", "take_any"):
        f = one(name)

        def any_(rows):
            first = None
            for r in rows:
                v = f(r)
                if v is not None and v != "":
                    return v
                if first is None:
                    first = v
            return first

        return Agg(any_, f"any_{suffix}", args[0].type)
    if name in ("min", "max"):
        f = one(name)
        pick = _agg_minmax(-1 if name == "min" else 1)
        return Agg(lambda rows: pick([f(r) for r in rows]), f"{name}_{suffix}", args[0].type)
    if name == "sum":
        f = one(name)
        return Agg(lambda rows: _agg_sum([f(r) for r in rows]), f"sum_{suffix}", "any")
    if name == "avg":
        f = one(name)

        def avg(rows):
            total = 0.0
            n = 0
            for r in rows:
                v = f(r)
                c = v.__class__
                if c is int or c is float:
                    total += v
                    n += 1
                elif c is str and (x := to_real(v)) is not None:
                    total += x
                    n += 1
            return total / n if n else None

        return Agg(avg, f"avg_{suffix}", "real")
    raise KqlError("InvalidQuery", f"'{name}' is not an aggregation function")


AGGREGATES = {"count", "countif", "dcount", "make_list", "make_set", "any", "take_any", "min", "max", "sum", "avg"}

# Real KQL aggregation functions this engine does not implement (named in the error).
UNSUPPORTED_AGGREGATES = {
    "arg_max", "arg_min", "anyif", "avgif", "sumif", "minif", "maxif", "dcountif", "make_list_if",
    "make_set_if", "make_bag", "make_bag_if", "make_list_with_nulls", "percentile", "percentiles",
    "percentiles_array", "percentilew", "percentilesw", "stdev", "stdevif", "stdevp", "variance",
    "varianceif", "variancep", "hll", "hll_merge", "tdigest", "tdigest_merge", "buildschema",
    "binary_all_and", "binary_all_or", "binary_all_xor", "count_distinct", "count_distinctif",
    "take_anyif", "makelist", "makeset", "countof_distinct",
}

