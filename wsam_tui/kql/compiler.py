"""Compile a parsed query into closures, and run them.

Design (why it is fast):

* Every scalar expression becomes one Python closure over a row dict, built once per query.
  Hot comparisons against constants get specialised closures (no generic dispatch per row).
* ``extend``/``project``/``project-away``/``project-rename`` do not touch rows at all: they only
  change the *scope* (name -> accessor closure over the current base row). Rows are built once,
  at the end (or when an operator such as ``summarize``/``join``/``mv-expand`` needs them),
  by a generated dict-display function. So ``where | extend | project`` is one filter pass plus
  one small dict per surviving row, and input rows are never copied or mutated.
* Column existence follows KQL: a table's schema is ARG's standard columns plus any key found
  in its rows. Names outside the standard set are checked against the data only when a query
  actually uses one (one scan, at run time); everything else is checked at compile time.
"""

from __future__ import annotations

import heapq
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from . import ast as A
from .errors import KqlError, KqlUnsupportedError
from .functions import (
    AGGREGATES,
    CE,
    SCALARS,
    UNSUPPORTED_AGGREGATES,
    Agg,
    FuncError,
    build_aggregate,
    const,
)
from .values import compare, equals, hash_key, to_long, to_str

__all__ = ["STANDARD_COLUMNS", "CompiledQuery", "Ctx", "compile_query"]

STANDARD_COLUMNS = [
    "id", "name", "type", "tenantId", "kind", "location", "resourceGroup", "subscriptionId",
    "managedBy", "sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation",
]
_STANDARD_SET = frozenset(STANDARD_COLUMNS)

# Conversion functions whose result keeps the name of their argument (tostring(properties.x) -> properties_x).
_NAME_PRESERVING = {
    "tostring", "toint", "tolong", "toreal", "todouble", "tobool", "toboolean", "todatetime",
    "totimespan", "totime", "todynamic", "bin", "floor",
}

_SCALAR_TYPES = ("string", "long", "real", "bool", "datetime", "timespan")

_AGG_EXPR_MSG = ("expressions over aggregation results are not supported in summarize; "
                 "name the aggregation and compute with extend afterwards")


# ============================================================================ runtime context


class Ctx:
    """State of one run: the tables, the per-run memo (schemas), loaded table rows."""

    def __init__(self, tables: Mapping[str, Any]):
        self.tables = {str(k).lower(): v for k, v in tables.items()}
        self.loaded: dict[str, list] = {}
        self.memo: dict[object, object] = {}

    def table(self, name: str, pos: int) -> list:
        key = name.lower()
        rows = self.loaded.get(key)
        if rows is not None:
            return rows
        if key not in self.tables:
            raise KqlError("UnknownTable", f"unknown table '{name}'", pos)
        src = self.tables[key]
        if callable(src):
            src = src()
        rows = src if isinstance(src, list) else list(src)
        self.loaded[key] = rows
        return rows


Order = Callable[[Ctx], list]


def _memo(fn: Order) -> Order:
    key = object()

    def g(ctx: Ctx) -> list:
        try:
            return ctx.memo[key]  # type: ignore[return-value]
        except KeyError:
            v = ctx.memo[key] = fn(ctx)
            return v

    return g


def _const_order(names: list[str]) -> Order:
    names = list(names)
    return lambda ctx: names


def _source_order(name: str, pos: int) -> Order:
    def order(ctx: Ctx) -> list:
        rows = ctx.table(name, pos)
        extra = set().union(*rows) - _STANDARD_SET if rows else set()
        if not extra:
            return list(STANDARD_COLUMNS)
        found: list[str] = []
        for r in rows:  # keep first-seen order for the extra columns
            for k in r:
                if k in extra:
                    found.append(k)
                    extra.discard(k)
            if not extra:
                break
        return STANDARD_COLUMNS + found

    return _memo(order)


# ============================================================================ scope


def _getter(name: str) -> CE:
    def get(r):
        return r.get(name)

    return CE(get, "any", name=name, column=name)


class Scope:
    """Compile-time view of the rows flowing between operators.

    ``cols``: known columns, in order, with the accessor that computes each from a *base row*.
    ``order``: exact runtime column order (adds the table's extra columns when ``open``).
    ``exact``: the base rows are engine-built dicts holding exactly these columns.
    """

    __slots__ = ("cols", "exact", "open", "order", "removed")

    def __init__(self, cols: dict[str, CE], order: Order | None = None, open_: bool = False,
                 removed: frozenset[str] = frozenset(), exact: bool = False):
        self.cols = cols
        self.order = order if order is not None else _const_order(list(cols))
        self.open = open_
        self.removed = removed
        self.exact = exact


class Stage:
    __slots__ = ("checks", "run")

    def __init__(self, run: Callable[[list, Ctx], list], checks: list):
        self.run = run
        self.checks = checks


def _builder(names: list[str], accs: list[CE | None]) -> Callable[[dict], dict]:
    """Generate ``lambda r: {name: accessor(r), ...}`` as real code (a dict display is the fastest
    way CPython builds a dict). Names go in as repr() literals, so any string is safe."""
    ns: dict[str, Any] = {}
    lines = ["def build(r):", "    return {"]
    for i, (n, ce) in enumerate(zip(names, accs, strict=True)):
        if ce is None or ce.column is not None:
            col = n if ce is None else ce.column
            lines.append(f"        {n!r}: r.get({col!r}),")
        else:
            ns[f"_f{i}"] = ce.fn
            lines.append(f"        {n!r}: _f{i}(r),")
    lines.append("    }")
    exec("\n".join(lines), ns)
    return ns["build"]


def _materialize(scope: Scope, rows: list, ctx: Ctx) -> tuple[list, list[str]]:
    names = scope.order(ctx)
    if scope.exact:
        return rows, names
    build = _builder(names, [scope.cols.get(n) for n in names])
    return [build(r) for r in rows], names


# ============================================================================ compiler


class CompiledQuery:
    """A parsed and compiled query; reusable across runs (thread-safe: no per-run state)."""

    def __init__(self, text: str, pipeline: CompiledPipeline):
        self.text = text
        self.pipeline = pipeline

    def __repr__(self) -> str:
        return f"CompiledQuery({self.text!r})"


class CompiledPipeline:
    def __init__(self, source: str, source_pos: int, stages: list[Stage], scope: Scope):
        self.source = source
        self.source_pos = source_pos
        self.stages = stages
        self.scope = scope

    def execute(self, ctx: Ctx) -> list:
        rows = ctx.table(self.source, self.source_pos)
        for st in self.stages:
            for order, name, pos in st.checks:
                if name not in order(ctx):
                    raise _unresolved(name, pos)
            rows = st.run(rows, ctx)
        return rows


def _unresolved(name: str, pos: int | None) -> KqlError:
    return KqlError("InvalidQuery", f"Failed to resolve scalar expression named '{name}'", pos)


def compile_query(text: str, pipe: A.Pipeline) -> CompiledQuery:
    return CompiledQuery(text, _Compiler(text).pipeline(pipe))


class _Compiler:
    def __init__(self, text: str):
        self.text = text
        self.checks: list = []

    def err(self, code: str, msg: str, pos: int | None) -> KqlError:
        if code.startswith("Unsupported"):
            return KqlUnsupportedError(code, msg, pos, text=self.text)
        return KqlError(code, msg, pos, text=self.text)

    # ------------------------------------------------------------------ pipelines
    def pipeline(self, pipe: A.Pipeline) -> CompiledPipeline:
        scope = Scope({c: _getter(c) for c in STANDARD_COLUMNS}, _source_order(pipe.source, pipe.source_pos), True)
        stages: list[Stage] = []
        for op in pipe.ops:
            self.checks = []
            scope, run = self.operator(op, scope)
            if run is not None:
                stages.append(Stage(run, self.checks))
            elif self.checks:  # lazy operator with run-time column checks: a no-op stage runs them
                stages.append(Stage(lambda rows, ctx: rows, self.checks))
        return CompiledPipeline(pipe.source, pipe.source_pos, stages, scope)

    def operator(self, op: A.Op, scope: Scope) -> tuple[Scope, Callable | None]:
        if isinstance(op, A.Where):
            return self.where(op, scope)
        if isinstance(op, A.Extend):
            return self.extend(op, scope), None
        if isinstance(op, A.Project):
            return self.project(op, scope), None
        if isinstance(op, A.ProjectAway):
            return self.project_away(op, scope), None
        if isinstance(op, A.ProjectRename):
            return self.project_rename(op, scope), None
        if isinstance(op, A.Summarize):
            return self.summarize(op, scope)
        if isinstance(op, A.Count):
            return Scope({"Count": _getter("Count")}, exact=True), lambda rows, ctx: [{"Count": len(rows)}]
        if isinstance(op, A.Sort):
            return scope, self.sort_run([self.sort_key(k, scope) for k in op.keys], None)
        if isinstance(op, A.Take):
            n = self.count_arg(op.count, "take")
            return scope, lambda rows, ctx: rows[:n]
        if isinstance(op, A.Top):
            n = self.count_arg(op.count, "top")
            return scope, self.sort_run([self.sort_key(op.key, scope)], n)
        if isinstance(op, A.Distinct):
            return self.distinct(op, scope)
        if isinstance(op, A.Join):
            return self.join(op, scope)
        if isinstance(op, A.MvExpand):
            return self.mv_expand(op, scope)
        raise self.err("UnsupportedOperator", f"operator {type(op).__name__} is not supported", op.pos)  # pragma: no cover

    # ------------------------------------------------------------------ where
    def where(self, op: A.Where, scope: Scope) -> tuple[Scope, Callable]:
        # Top-level `and` terms become successive filters (cheapest evaluation, no recursion).
        conjuncts: list[A.Expr] = []
        stack: list[A.Expr] = [op.predicate]
        while stack:
            e = stack.pop()
            if isinstance(e, A.Binary) and e.op == "and":
                stack.append(e.right)
                stack.append(e.left)
            else:
                conjuncts.append(e)
        preds = []
        for e in conjuncts:
            ce = self.expr(e, scope)
            self.require_bool(ce, e, "where")
            if ce.const:
                if ce.value is True:
                    continue
                return scope, lambda rows, ctx: []
            preds.append(ce.fn)
        if not preds:
            return scope, lambda rows, ctx: rows

        def run(rows: list, ctx: Ctx) -> list:
            for p in preds:
                rows = [r for r in rows if p(r) is True]
            return rows

        return scope, run

    def require_bool(self, ce: CE, e: A.Expr, what: str) -> None:
        if ce.type in _SCALAR_TYPES and ce.type != "bool":
            raise self.err("InvalidQuery", f"{what}: the predicate must be boolean, not {ce.type}", e.pos)

    # ------------------------------------------------------------------ naming
    def derive_name(self, ce: CE, taken: Iterable[str], counter: list[int]) -> str:
        if ce.name:
            return self.unique(ce.name, taken)
        taken = set(taken)
        while True:
            counter[0] += 1
            name = f"Column{counter[0]}"
            if name not in taken:
                return name

    @staticmethod
    def unique(name: str, taken: Iterable[str]) -> str:
        taken = set(taken)
        if name not in taken:
            return name
        i = 1
        while f"{name}{i}" in taken:
            i += 1
        return f"{name}{i}"

    # ------------------------------------------------------------------ extend / project
    def extend(self, op: A.Extend, scope: Scope) -> Scope:
        cols = dict(scope.cols)
        order = scope.order
        removed = set(scope.removed)
        counter = [0]
        cur = Scope(cols, order, scope.open, frozenset(removed))
        for item in op.items:
            ce = self.expr(item.expr, cur)
            name = item.name or self.derive_name(ce, cols, counter)
            cols.pop(name, None)  # KQL: an existing column is removed and re-appended
            cols[name] = ce
            removed.discard(name)
            order = _memo(lambda ctx, _prev=order, _n=name: [c for c in _prev(ctx) if c != _n] + [_n])
            cur = Scope(cols, order, scope.open, frozenset(removed))
        return Scope(dict(cols), order, scope.open, frozenset(removed))

    def project(self, op: A.Project, scope: Scope) -> Scope:
        cols: dict[str, CE] = {}
        counter = [0]
        for item in op.items:
            ce = self.expr(item.expr, scope)
            name = item.name or self.derive_name(ce, cols, counter)
            if name in cols:
                raise self.err("InvalidQuery", f"project: duplicate column name '{name}'", item.pos)
            cols[name] = ce
        return Scope(cols)

    def project_away(self, op: A.ProjectAway, scope: Scope) -> Scope:
        cols = dict(scope.cols)
        names = set()
        for name, pos in op.names:
            self.resolve(name, pos, scope)  # must exist
            cols.pop(name, None)
            names.add(name)
        order = _memo(lambda ctx, _prev=scope.order, _names=frozenset(names): [c for c in _prev(ctx) if c not in _names])
        return Scope(cols, order if scope.open else None, scope.open, scope.removed | names)

    def project_rename(self, op: A.ProjectRename, scope: Scope) -> Scope:
        cols = dict(scope.cols)
        order = scope.order
        removed = set(scope.removed)
        for new, old, pos in op.pairs:
            cur = Scope(cols, order, scope.open, frozenset(removed))
            ce = self.resolve(old, pos, cur)
            if new != old and new in cols:
                raise self.err("InvalidQuery", f"project-rename: a column named '{new}' already exists", pos)
            if old in cols:
                cols = {(new if k == old else k): v for k, v in cols.items()}
            else:
                cols[new] = ce
            removed.add(old)
            removed.discard(new)
            order = _memo(lambda ctx, _prev=order, _o=old, _n=new: [(_n if c == _o else c) for c in _prev(ctx)])
        return Scope(cols, order if scope.open else None, scope.open, frozenset(removed))

    # ------------------------------------------------------------------ summarize
    def summarize(self, op: A.Summarize, scope: Scope) -> tuple[Scope, Callable]:
        out_names: list[str] = []
        counter = [0]
        key_fns = []
        for item in op.by:
            ce = self.expr(item.expr, scope)
            if item.name:
                if item.name in out_names:
                    raise self.err("InvalidQuery", f"summarize: duplicate column name '{item.name}'", item.pos)
                name = item.name
            else:
                name = self.derive_name(ce, out_names, counter)
            out_names.append(name)
            key_fns.append(ce.fn)
        aggs: list[Agg] = []
        for item in op.aggs:
            agg = self.aggregate(item.expr, scope)
            if item.name:
                if item.name in out_names:
                    raise self.err("InvalidQuery", f"summarize: duplicate column name '{item.name}'", item.pos)
                name = item.name
            else:
                name = self.unique(agg.default_name, out_names)
            out_names.append(name)
            aggs.append(agg)
        nkeys = len(key_fns)
        computes = [a.compute for a in aggs]
        names = list(out_names)

        def run(rows: list, ctx: Ctx) -> list:
            if nkeys == 0:
                return [dict(zip(names, [c(rows) for c in computes], strict=True))]
            groups: dict[object, list] = {}
            reps: dict[object, tuple] = {}
            if nkeys == 1:
                g = key_fns[0]
                for r in rows:
                    v = g(r)
                    k = v if v.__class__ is str else hash_key(v)
                    lst = groups.get(k)
                    if lst is None:
                        groups[k] = [r]
                        reps[k] = (v,)
                    else:
                        lst.append(r)
            else:
                for r in rows:
                    vals = tuple([f(r) for f in key_fns])
                    k = tuple([hash_key(v) for v in vals])
                    lst = groups.get(k)
                    if lst is None:
                        groups[k] = [r]
                        reps[k] = vals
                    else:
                        lst.append(r)
            return [
                dict(zip(names, [*reps[k], *[c(grp) for c in computes]], strict=True))
                for k, grp in groups.items()
            ]

        return Scope({n: _getter(n) for n in names}, exact=True), run

    def aggregate(self, e: A.Expr, scope: Scope) -> Agg:
        if not isinstance(e, A.Call):
            if self.contains_aggregate(e):
                raise KqlUnsupportedError("UnsupportedOperator", _AGG_EXPR_MSG, e.pos, text=self.text)
            raise self.err("InvalidQuery", "summarize expects an aggregation function such as count() or make_list(x)", e.pos)
        if e.name in UNSUPPORTED_AGGREGATES:
            raise KqlUnsupportedError("UnsupportedFunction", f"aggregation function '{e.name}' is not supported", e.pos, text=self.text)
        if e.name not in AGGREGATES:
            if any(self.contains_aggregate(a) for a in e.args):
                raise KqlUnsupportedError("UnsupportedOperator", _AGG_EXPR_MSG, e.pos, text=self.text)
            raise self.err("InvalidQuery", f"summarize expects an aggregation function, '{e.name}' is not one", e.pos)
        args = []
        for a in e.args:
            if isinstance(a, A.Star):
                raise KqlUnsupportedError("UnsupportedFunction", f"'{e.name}(*)' is not supported", a.pos, text=self.text)
            args.append(self.expr(a, scope))
        try:
            return build_aggregate(e.name, args, [a.name for a in args])
        except FuncError as fe:
            raise self.err(fe.code, fe.message, e.pos) from None

    def contains_aggregate(self, e: A.Expr) -> bool:
        if isinstance(e, A.Call):
            return e.name in AGGREGATES or e.name in UNSUPPORTED_AGGREGATES or any(self.contains_aggregate(a) for a in e.args)
        for child in ("left", "right", "operand", "obj", "index", "low", "high"):
            c = getattr(e, child, None)
            if isinstance(c, A.Expr) and self.contains_aggregate(c):
                return True
        return isinstance(e, A.InList) and any(self.contains_aggregate(a) for a in e.items)

    # ------------------------------------------------------------------ sort / top / take
    def count_arg(self, e: A.Expr, what: str) -> int:
        try:
            ce = self.expr(e, Scope({}))
        except KqlError:
            ce = CE(lambda r: None, "any")
        n = to_long(ce.value) if ce.const and ce.value.__class__ is int else None
        if n is None or n < 0:
            raise self.err("InvalidQuery", f"{what}: the row count must be a non-negative integer constant", e.pos)
        return n

    def sort_key(self, k: A.SortKey, scope: Scope) -> tuple[Callable, bool, bool]:
        return self.expr(k.expr, scope).fn, k.desc, k.nulls_first

    @staticmethod
    def sort_run(keys: list[tuple[Callable, bool, bool]], limit: int | None) -> Callable:
        def run(rows: list, ctx: Ctx) -> list:
            # Stable multi-key sort: one pass per key, least significant first. Each pass sorts row
            # indices by a precomputed key list (C-level comparisons, no per-row tuples).
            for fn, desc, nulls_first in reversed(keys):
                ks = [fn(r) for r in rows]
                nulls = [i for i, v in enumerate(ks) if v is None]
                idx = [i for i, v in enumerate(ks) if v is not None] if nulls else list(range(len(ks)))
                classes = {ks[i].__class__ for i in idx}
                if not ((len(classes) <= 1 and classes <= _FAST_SORT_CLASSES) or classes <= {int, float}):
                    ks = [None if v is None else _sort_key(v) for v in ks]
                key = ks.__getitem__
                if limit is not None and len(keys) == 1:
                    pick = heapq.nlargest if desc else heapq.nsmallest
                    if nulls_first:
                        chosen = nulls[:limit] + pick(max(limit - len(nulls), 0), idx, key=key)
                    else:
                        top = pick(limit, idx, key=key)
                        chosen = top + nulls[: limit - len(top)]
                    return [rows[i] for i in chosen]
                idx.sort(key=key, reverse=desc)
                order = nulls + idx if nulls_first else idx + nulls
                rows = [rows[i] for i in order]
            return rows if limit is None else rows[:limit]

        return run

    # ------------------------------------------------------------------ distinct
    def distinct(self, op: A.Distinct, scope: Scope) -> tuple[Scope, Callable]:
        if op.names is None:
            def run_all(rows: list, ctx: Ctx) -> list:
                mat, names = _materialize(scope, rows, ctx)
                seen: set = set()
                out = []
                for d in mat:
                    k = tuple([hash_key(d[n]) for n in names])
                    if k not in seen:
                        seen.add(k)
                        out.append(d)
                return out

            return Scope({n: _getter(n) for n in scope.cols}, scope.order, scope.open, scope.removed, exact=True), run_all
        names = []
        accs = []
        for name, pos in op.names:
            if name in names:
                raise self.err("InvalidQuery", f"distinct: duplicate column '{name}'", pos)
            names.append(name)
            accs.append(self.resolve(name, pos, scope))
        build = _builder(names, accs)

        def run(rows: list, ctx: Ctx) -> list:
            seen: set = set()
            out = []
            for r in rows:
                d = build(r)
                k = tuple([hash_key(v) for v in d.values()])
                if k not in seen:
                    seen.add(k)
                    out.append(d)
            return out

        return Scope({n: _getter(n) for n in names}, exact=True), run

    # ------------------------------------------------------------------ join
    def join(self, op: A.Join, scope: Scope) -> tuple[Scope, Callable]:
        outer_checks = self.checks
        self.checks = []
        right = self.pipeline(op.right)
        self.checks = outer_checks
        rscope = right.scope
        lkeys, rkeys = [], []
        for c in op.conds:
            self.resolve(c.left, c.pos, scope)
            self.resolve(c.right, c.pos, rscope)
            lkeys.append(c.left)
            rkeys.append(c.right)
        kind = {"anti": "leftanti", "leftantisemi": "leftanti", "rightantisemi": "rightanti"}.get(op.kind, op.kind)
        left_only = kind in ("leftsemi", "leftanti")
        right_only = kind in ("rightsemi", "rightanti")

        def out_names(lnames: list[str], rnames: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
            if left_only:
                return list(lnames), []
            if right_only:
                return list(rnames), [(n, n) for n in rnames]
            taken = set(lnames)
            rmap = []
            for n in rnames:
                new = self.unique(n, taken) if n in taken else n
                taken.add(new)
                rmap.append((n, new))
            return list(lnames) + [new for _, new in rmap], rmap

        known, _ = out_names(list(scope.cols), list(rscope.cols))
        lorder, rorder = scope.order, rscope.order
        order = _memo(lambda ctx: out_names(lorder(ctx), rorder(ctx))[0])

        def run(rows: list, ctx: Ctx) -> list:
            lrows, lnames = _materialize(scope, rows, ctx)
            rrows, rnames = _materialize(rscope, right.execute(ctx), ctx)
            names, rmap = out_names(lnames, rnames)
            return _hash_join(kind, lrows, rrows, lkeys, rkeys, lnames, rmap, names)

        stage_scope = Scope({n: _getter(n) for n in known}, order, scope.open or rscope.open, exact=True)
        # Run-time column checks of the right pipeline's own operators happen inside right.execute().
        return stage_scope, run

    # ------------------------------------------------------------------ mv-expand
    def mv_expand(self, op: A.MvExpand, scope: Scope) -> tuple[Scope, Callable]:
        items = []
        new_names: list[str] = []
        for it in op.items:
            if it.name is None and not isinstance(it.expr, A.Name):
                raise KqlUnsupportedError("UnsupportedOperator", "mv-expand of an expression needs a column name: "
                                          "mv-expand name = expression", it.pos, text=self.text)
            name = it.name or it.expr.name  # type: ignore[attr-defined]
            if name in [n for n, _, _ in items]:
                raise self.err("InvalidQuery", f"mv-expand: column '{name}' is expanded twice", it.pos)
            ce = self.expr(it.expr, scope)
            if it.to_type not in (None, "dynamic", "string", "long", "int", "real", "double", "bool", "boolean"):
                raise KqlUnsupportedError("UnsupportedOperator", f"mv-expand ... to typeof({it.to_type}) is not supported",
                                          it.pos, text=self.text)
            items.append((name, ce.fn, _TYPE_CASTS.get(it.to_type or "dynamic")))
            if name not in scope.cols or name in scope.removed:
                new_names.append(name)
        if op.item_index:
            if op.item_index in scope.cols or op.item_index in [n for n, _, _ in items]:
                raise self.err("InvalidQuery", f"mv-expand: with_itemindex column '{op.item_index}' already exists", op.pos)
            new_names.append(op.item_index)
        bag_as_array = op.bag_mode == "array"
        limit = op.limit
        index_col = op.item_index
        prev_order = scope.order
        order = _memo(lambda ctx: (lambda base: base + [n for n in new_names if n not in base])(prev_order(ctx)))

        def run(rows: list, ctx: Ctx) -> list:
            out = []
            base_names = prev_order(ctx)
            build = _builder(base_names, [scope.cols.get(n) for n in base_names])
            for r in rows:
                expansions = [_expand_value(fn(r), bag_as_array) for _, fn, _ in items]
                n = max(len(e) for e in expansions)
                if limit is not None:
                    n = min(n, limit)
                if n == 0:
                    continue
                base = build(r)
                for i in range(n):
                    d = dict(base)
                    for (name, _, cast), exp in zip(items, expansions, strict=True):
                        d[name] = cast(exp[i]) if i < len(exp) else None
                    if index_col:
                        d[index_col] = i
                    out.append(d)
            return out

        known = [n for n in scope.cols if n not in scope.removed] + [n for n in new_names if n not in scope.cols]
        return Scope({n: _getter(n) for n in known}, order, scope.open, exact=True), run

    # ------------------------------------------------------------------ names
    def resolve(self, name: str, pos: int, scope: Scope) -> CE:
        ce = scope.cols.get(name)
        if ce is not None:
            if ce.name != name:  # a computed column is named by its column name from here on
                ce = CE(ce.fn, ce.type, ce.const, ce.value, name, ce.column)
            return ce
        if scope.open and name not in scope.removed:
            self.checks.append((scope.order, name, pos))
            return _getter(name)
        raise KqlError("InvalidQuery", f"Failed to resolve scalar expression named '{name}'", pos, text=self.text)

    # ------------------------------------------------------------------ scalar expressions
    def expr(self, e: A.Expr, scope: Scope) -> CE:
        if isinstance(e, A.Literal):
            return _literal(e)
        if isinstance(e, A.Name):
            return self.resolve(e.name, e.pos, scope)
        if isinstance(e, (A.Member, A.Index)):
            return self.path(e, scope)
        if isinstance(e, A.Call):
            return self.call(e, scope)
        if isinstance(e, A.Binary):
            return self.binary(e, scope)
        if isinstance(e, A.InList):
            return self.in_list(e, scope)
        if isinstance(e, A.Between):
            return self.between(e, scope)
        if isinstance(e, A.Unary):
            return self.unary(e, scope)
        if isinstance(e, A.Side):
            raise self.err("InvalidQuery", f"${e.side} can only be used in a join's 'on' clause", e.pos)
        if isinstance(e, A.Star):
            raise self.err("InvalidQuery", "'*' is not valid here", e.pos)
        raise self.err("InvalidQuery", f"unexpected expression {type(e).__name__}", e.pos)  # pragma: no cover

    def path(self, e: A.Expr, scope: Scope) -> CE:
        steps: list[object] = []  # str key | int index | CE (computed index)
        node = e
        while isinstance(node, (A.Member, A.Index)):
            if isinstance(node, A.Member):
                steps.append(node.name)
            else:
                idx = self.expr(node.index, scope)
                if idx.const:
                    if idx.value.__class__ not in (str, int):
                        raise self.err("InvalidQuery", "an index must be a string or an integer", node.index.pos)
                    steps.append(idx.value)
                else:
                    steps.append(idx)
            node = node.obj
        steps.reverse()
        base = self.expr(node, scope)
        if base.type in _SCALAR_TYPES:
            raise self.err("InvalidQuery", f"cannot access a property of a {base.type} value (use parse_json/todynamic)", e.pos)
        name = None
        if base.name and all(not isinstance(s, CE) for s in steps):
            name = "_".join([base.name, *[str(s) for s in steps]])
        return CE(_path_fn(base, steps), "dynamic", name=name)

    def call(self, e: A.Call, scope: Scope) -> CE:
        if e.name in AGGREGATES or e.name in UNSUPPORTED_AGGREGATES:
            raise self.err("InvalidQuery", f"aggregation function '{e.name}' can only be used in summarize", e.pos)
        builder = SCALARS.get(e.name)
        if builder is None:
            raise KqlUnsupportedError("UnsupportedFunction", f"function '{e.name}' is not supported", e.pos, text=self.text)
        args = []
        for a in e.args:
            if isinstance(a, A.Star):
                raise self.err("InvalidQuery", f"'*' is not a valid argument to '{e.name}'", a.pos)
            args.append(self.expr(a, scope))
        try:
            ce = builder(e.name, args)
        except FuncError as fe:
            raise self.err(fe.code, fe.message, e.pos) from None
        if e.name in _NAME_PRESERVING and args and args[0].name:
            ce = CE(ce.fn, ce.type, ce.const, ce.value, args[0].name, None)
        return ce

    def unary(self, e: A.Unary, scope: Scope) -> CE:
        a = self.expr(e.operand, scope)
        if e.op == "+":
            return a
        if a.type in ("string", "bool"):
            raise self.err("InvalidQuery", f"unary '-' cannot be applied to a {a.type}", e.pos)
        return _lift_const(_neg, [a], a.type if a.type in ("long", "real", "timespan") else "any")

    def binary(self, e: A.Binary, scope: Scope) -> CE:
        op = e.op
        if op in ("and", "or"):
            # Flatten `a or b or c ...` (left-deep from the parser) without recursion: generated
            # queries can chain thousands of terms.
            nodes: list[A.Expr] = []
            stack: list[A.Expr] = [e]
            while stack:
                n = stack.pop()
                if isinstance(n, A.Binary) and n.op == op:
                    stack.append(n.right)
                    stack.append(n.left)
                else:
                    nodes.append(n)
            operands = []
            for n in nodes:
                ce = self.expr(n, scope)
                self.require_bool(ce, n, f"'{op}'")
                operands.append(ce)
            return _logic(op, operands)
        a, b = self.expr(e.left, scope), self.expr(e.right, scope)
        if op in ("+", "-", "*", "/", "%"):
            for x, node in ((a, e.left), (b, e.right)):
                if x.type in ("string", "bool"):
                    hint = " (use strcat() to join strings)" if x.type == "string" and op == "+" else ""
                    raise self.err("InvalidQuery", f"operator '{op}' cannot be applied to a {x.type}{hint}", node.pos)
            return _arith(op, a, b)
        if op in ("==", "!="):
            return _equality(a, b, op == "!=")
        if op in ("<", "<=", ">", ">="):
            return _ordering(op, a, b)
        if op in ("=~", "!~"):
            return _string_op("=~", a, b, op == "!~")
        neg = op.startswith("!")
        return _string_op(op.lstrip("!"), a, b, neg)

    def in_list(self, e: A.InList, scope: Scope) -> CE:
        a = self.expr(e.left, scope)
        items = [self.expr(x, scope) for x in e.items]
        return _in_list(e.op, a, items)

    def between(self, e: A.Between, scope: Scope) -> CE:
        a, lo, hi = self.expr(e.left, scope), self.expr(e.low, scope), self.expr(e.high, scope)
        neg = e.negated

        def impl(v, low, high):
            c1, c2 = compare(v, low), compare(v, high)
            if c1 is None or c2 is None:
                return None
            inside = c1 >= 0 and c2 <= 0
            return not inside if neg else inside

        return _lift_const(impl, [a, lo, hi], "bool")


# ============================================================================ expression helpers


def _literal(e: A.Literal) -> CE:
    return const(e.value, e.type)


def _lift_const(impl: Callable, args: list[CE], typ: str) -> CE:
    if all(a.const for a in args):
        return const(impl(*[a.value for a in args]), typ)
    if len(args) == 1:
        f = args[0].fn
        return CE(lambda r: impl(f(r)), typ)
    if len(args) == 2:
        f, g = args[0].fn, args[1].fn
        return CE(lambda r: impl(f(r), g(r)), typ)
    fns = [a.fn for a in args]
    return CE(lambda r: impl(*[h(r) for h in fns]), typ)


def _path_fn(base: CE, steps: list) -> Callable:
    """Null-safe navigation: a missing key, a wrong type or an out-of-range index gives null."""
    simple = all(s.__class__ is str for s in steps)
    col = base.column
    if simple and col is not None and len(steps) == 1:
        (k1,) = steps

        def p1(r):
            v = r.get(col)
            return v.get(k1) if v.__class__ is dict else None

        return p1
    if simple and col is not None and len(steps) == 2:
        k1, k2 = steps

        def p2(r):
            v = r.get(col)
            if v.__class__ is dict:
                v = v.get(k1)
                if v.__class__ is dict:
                    return v.get(k2)
            return None

        return p2
    if simple and col is not None and len(steps) == 3:
        k1, k2, k3 = steps

        def p3(r):
            v = r.get(col)
            if v.__class__ is dict:
                v = v.get(k1)
                if v.__class__ is dict:
                    v = v.get(k2)
                    if v.__class__ is dict:
                        return v.get(k3)
            return None

        return p3
    get = base.fn
    prepared = [(s.fn, True) if isinstance(s, CE) else (s, False) for s in steps]

    def pn(r):
        v = get(r)
        for s, dyn in prepared:
            if v is None:
                return None
            k = s(r) if dyn else s
            if k.__class__ is str:
                v = v.get(k) if v.__class__ is dict else None
            elif k.__class__ is int and v.__class__ is list:
                n = len(v)
                v = v[k] if -n <= k < n else None
            else:
                return None
        return v

    return pn


def _neg(v: object) -> object:
    c = v.__class__
    if c is int or c is float or c is timedelta:
        return -v  # type: ignore[operator]
    return None


def _logic(op: str, operands: list[CE]) -> CE:
    """Three-valued n-ary and/or: false (resp. true) wins; otherwise any null makes the result null."""
    fns = [c.fn for c in operands]
    if op == "and":
        def impl_and(r):
            result: bool | None = True
            for f in fns:
                x = f(r)
                if x is False:
                    return False
                if x is not True:
                    result = None
            return result

        ce = CE(impl_and, "bool")
    else:
        def impl_or(r):
            result: bool | None = False
            for f in fns:
                x = f(r)
                if x is True:
                    return True
                if x is not False:
                    result = None
            return result

        ce = CE(impl_or, "bool")
    if all(c.const for c in operands):
        return const(ce.fn({}), "bool")
    return ce


def _num_type(a: CE, b: CE) -> str:
    if a.type == "long" and b.type == "long":
        return "long"
    if {a.type, b.type} <= {"long", "real"}:
        return "real"
    return "any"


def _idiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _arith_impl(op: str) -> Callable:
    def add(x, y):
        cx, cy = x.__class__, y.__class__
        if (cx is int or cx is float) and (cy is int or cy is float):
            return x + y
        if (cx is datetime and cy is timedelta) or (cx is timedelta and cy in (datetime, timedelta)):
            return x + y
        return None

    def sub(x, y):
        cx, cy = x.__class__, y.__class__
        if (cx is int or cx is float) and (cy is int or cy is float):
            return x - y
        if (cx is datetime and cy in (datetime, timedelta)) or (cx is timedelta and cy is timedelta):
            return x - y
        return None

    def mul(x, y):
        cx, cy = x.__class__, y.__class__
        if (cx is int or cx is float) and (cy is int or cy is float):
            return x * y
        if cx is timedelta and (cy is int or cy is float):
            return x * y
        if cy is timedelta and (cx is int or cx is float):
            return y * x
        return None

    def div(x, y):
        cx, cy = x.__class__, y.__class__
        if cx is int and cy is int:
            return None if y == 0 else _idiv(x, y)
        if (cx is int or cx is float) and (cy is int or cy is float):
            return None if y == 0 else x / y
        if cx is timedelta and (cy is int or cy is float):
            return None if y == 0 else x / y
        if cx is timedelta and cy is timedelta:
            return None if not y else x / y
        return None

    def mod(x, y):
        cx, cy = x.__class__, y.__class__
        if cx is int and cy is int:
            if y == 0:
                return None
            m = abs(x) % abs(y)
            return m if x >= 0 else -m
        if (cx is int or cx is float) and (cy is int or cy is float):
            return None if y == 0 else math.fmod(x, y)
        return None

    return {"+": add, "-": sub, "*": mul, "/": div, "%": mod}[op]


def _arith(op: str, a: CE, b: CE) -> CE:
    impl = _arith_impl(op)

    def safe(x, y):
        if x is None or y is None:
            return None
        return impl(x, y)

    typ = _num_type(a, b)
    if op in ("+", "-") and "datetime" in (a.type, b.type):
        typ = "timespan" if (op == "-" and a.type == b.type == "datetime") else "datetime"
    elif a.type == "timespan" or b.type == "timespan":
        typ = "timespan" if op != "/" or b.type != "timespan" else "real"
    return _lift_const(safe, [a, b], typ)


def _ne(v: object, k: object) -> bool | None:
    r = equals(v, k)
    return None if r is None else not r


def _equality(a: CE, b: CE, negate: bool) -> CE:
    if a.const and not b.const:
        a, b = b, a
    if b.const and not a.const and b.value is not None and b.value.__class__ in (str, int, float, bool):
        k = b.value
        kc = k.__class__
        col = a.column
        if col is not None:
            if negate:
                def f(r):
                    v = r.get(col)
                    if v.__class__ is kc:
                        return v != k
                    return _ne(v, k)
            else:
                def f(r):
                    v = r.get(col)
                    if v.__class__ is kc:
                        return v == k
                    return equals(v, k)
        else:
            g = a.fn
            if negate:
                def f(r):
                    v = g(r)
                    if v.__class__ is kc:
                        return v != k
                    return _ne(v, k)
            else:
                def f(r):
                    v = g(r)
                    if v.__class__ is kc:
                        return v == k
                    return equals(v, k)
        return CE(f, "bool")
    return _lift_const(_ne if negate else equals, [a, b], "bool")


_ORDER_OPS = {"<": lambda c: c < 0, "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0}
_FAST_ORDER_CLASSES = (int, float, str, datetime, timedelta)


def _ordering(op: str, a: CE, b: CE) -> CE:
    test = _ORDER_OPS[op]
    pyop = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def impl(x, y):
        cx = x.__class__
        if cx is y.__class__ and cx in _FAST_ORDER_CLASSES:
            return pyop(x, y)
        c = compare(x, y)
        return None if c is None else test(c)

    if b.const and not a.const and b.value.__class__ in (int, float, datetime, timedelta):
        k = b.value
        kc = k.__class__
        g = a.fn

        def f(r):
            v = g(r)
            if v.__class__ is kc:
                return pyop(v, k)
            c = compare(v, k)
            return None if c is None else test(c)

        return CE(f, "bool")
    return _lift_const(impl, [a, b], "bool")


# --- string operators -------------------------------------------------------------------------

_ALNUM = r"[^\W_]"


@lru_cache(maxsize=1024)
def _term_regex(term: str, case_sensitive: bool, prefix_only: bool = False, suffix_only: bool = False) -> re.Pattern:
    """KQL term match: ``term`` must start and end on term boundaries (runs of alphanumerics)."""
    pat = re.escape(term)
    if term and not suffix_only and re.match(_ALNUM, term[0]):
        pat = rf"(?<!{_ALNUM})" + pat
    if term and not prefix_only and re.match(_ALNUM, term[-1]):
        pat = pat + rf"(?!{_ALNUM})"
    return re.compile(pat, 0 if case_sensitive else re.IGNORECASE)


def _string_impl(op: str) -> Callable[[str, str], bool]:
    """(lhs, rhs) -> bool on already-stringified operands."""
    if op == "=~":
        return lambda s, t: s.lower() == t.lower()
    if op == "contains":
        return lambda s, t: t.lower() in s.lower()
    if op == "contains_cs":
        return lambda s, t: t in s
    if op == "startswith":
        return lambda s, t: s.lower().startswith(t.lower())
    if op == "startswith_cs":
        return lambda s, t: s.startswith(t)
    if op == "endswith":
        return lambda s, t: s.lower().endswith(t.lower())
    if op == "endswith_cs":
        return lambda s, t: s.endswith(t)
    if op in ("has", "has_cs"):
        return lambda s, t: _term_regex(t, op == "has_cs").search(s) is not None
    if op in ("hasprefix", "hasprefix_cs"):
        return lambda s, t: _term_regex(t, op.endswith("_cs"), prefix_only=True).search(s) is not None
    if op in ("hassuffix", "hassuffix_cs"):
        return lambda s, t: _term_regex(t, op.endswith("_cs"), suffix_only=True).search(s) is not None
    raise KqlError("UnsupportedOperator", f"string operator '{op}' is not supported")


def _const_string_test(op: str, t: str) -> Callable[[str], bool]:
    """Specialised single-argument test for a constant right-hand side (work done once)."""
    tl = t.lower()
    if op == "=~":
        return lambda s: s.lower() == tl
    if op == "contains":
        return lambda s: tl in s.lower()
    if op == "contains_cs":
        return lambda s: t in s
    if op == "startswith":
        return lambda s: s.lower().startswith(tl)
    if op == "startswith_cs":
        return lambda s: s.startswith(t)
    if op == "endswith":
        return lambda s: s.lower().endswith(tl)
    if op == "endswith_cs":
        return lambda s: s.endswith(t)
    if op in ("has", "has_cs", "hasprefix", "hasprefix_cs", "hassuffix", "hassuffix_cs"):
        rx = _term_regex(t, op.endswith("_cs"), prefix_only=op.startswith("hasprefix"), suffix_only=op.startswith("hassuffix"))
        search = rx.search
        return lambda s: search(s) is not None
    raise KqlError("UnsupportedOperator", f"string operator '{op}' is not supported")


def _string_op(op: str, a: CE, b: CE, negate: bool) -> CE:
    if b.const and not a.const:
        test = _const_string_test(op, to_str(b.value))
        col = a.column
        if col is not None:
            if negate:
                def f(r):
                    v = r.get(col)
                    return not test(v if v.__class__ is str else to_str(v))
            else:
                def f(r):
                    v = r.get(col)
                    return test(v if v.__class__ is str else to_str(v))
        else:
            g = a.fn
            if negate:
                def f(r):
                    v = g(r)
                    return not test(v if v.__class__ is str else to_str(v))
            else:
                def f(r):
                    v = g(r)
                    return test(v if v.__class__ is str else to_str(v))
        return CE(f, "bool")
    impl2 = _string_impl(op)

    def both(x, y):
        res = impl2(to_str(x), to_str(y))
        return not res if negate else res

    return _lift_const(both, [a, b], "bool")


def _flatten_items(values: list) -> list:
    out = []
    for v in values:
        if v.__class__ is list:
            out.extend(v)  # KQL: a dynamic array in an in-list contributes its elements
        else:
            out.append(v)
    return out


def _in_list(op: str, a: CE, items: list[CE]) -> CE:
    negate = op.startswith("!")
    base = op.lstrip("!")
    g = a.fn
    if base in ("has_any", "has_all"):
        want_all = base == "has_all"

        def terms_test(terms: list) -> Callable[[str], bool]:
            regs = [_term_regex(to_str(t), False).search for t in terms if t is not None]
            if want_all:
                return lambda s: all(rx(s) is not None for rx in regs)
            return lambda s: any(rx(s) is not None for rx in regs)

        if all(i.const for i in items):
            test = terms_test(_flatten_items([i.value for i in items]))

            def f_const(r):
                v = g(r)
                return test(v if v.__class__ is str else to_str(v))

            return CE(f_const, "bool")
        fns = [i.fn for i in items]

        def f_dyn(r):
            v = g(r)
            return terms_test(_flatten_items([h(r) for h in fns]))(to_str(v))

        return CE(f_dyn, "bool")
    ci = base == "in~"
    if all(i.const for i in items):
        values = _flatten_items([i.value for i in items])
        if ci:
            lowered = {to_str(x).lower() for x in values}

            def f_ci(r):
                v = g(r)
                hit = (v if v.__class__ is str else to_str(v)).lower() in lowered
                return not hit if negate else hit

            return CE(f_ci, "bool")
        keys = {hash_key(x) for x in values if x is not None}
        classes = {x.__class__ for x in values if x is not None}

        def f_cs(r):
            v = g(r)
            if v is None:
                return negate  # null in (...) is false; null !in (...) is true (as with == / !=)
            hit = (v if v.__class__ is str else hash_key(v)) in keys
            if not hit and v.__class__ not in classes:
                hit = any(equals(v, x) is True for x in values)
            return not hit if negate else hit

        return CE(f_cs, "bool")
    fns = [i.fn for i in items]

    def f_rows(r):
        v = g(r)
        vals = _flatten_items([h(r) for h in fns])
        if ci:
            s = to_str(v).lower()
            hit = any(to_str(x).lower() == s for x in vals)
        else:
            if v is None:
                return negate
            hit = any(equals(v, x) is True for x in vals)
        return not hit if negate else hit

    return CE(f_rows, "bool")


# --- sorting ----------------------------------------------------------------------------------


_FAST_SORT_CLASSES = frozenset({int, float, str, datetime, timedelta})


def _sort_key(v: object) -> tuple:
    """Total order across types: bool < numbers < strings < datetimes < timespans < dynamic."""
    c = v.__class__
    if c is str:
        return (2, v)
    if c is int or c is float:
        return (1, v)
    if c is bool:
        return (0, v)
    if c is datetime:
        return (3, v)
    if c is timedelta:
        return (4, v)
    return (5, to_str(v))


# --- joins / mv-expand ------------------------------------------------------------------------


def _hash_join(kind: str, lrows: list, rrows: list, lkeys: list[str], rkeys: list[str],
               lnames: list[str], rmap: list[tuple[str, str]], names: list[str]) -> list:
    def key_of(d: dict, keys: list[str]):
        if len(keys) == 1:
            v = d[keys[0]]
            if v is None:
                return None
            return v if v.__class__ is str else hash_key(v)
        vals = [d[k] for k in keys]
        if any(v is None for v in vals):
            return None  # null keys never match (== on null is not true)
        return tuple([hash_key(v) for v in vals])

    if kind in ("rightsemi", "rightanti"):
        lkeyset = {k for d in lrows if (k := key_of(d, lkeys)) is not None}
        want = kind == "rightsemi"
        return [d for d in rrows if ((k := key_of(d, rkeys)) is not None and k in lkeyset) == want]
    index: dict[object, list] = {}
    for d in rrows:
        k = key_of(d, rkeys)
        if k is not None:
            index.setdefault(k, []).append(d)
    if kind in ("leftsemi", "leftanti"):
        want = kind == "leftsemi"
        return [d for d in lrows if ((k := key_of(d, lkeys)) is not None and k in index) == want]

    ns: dict[str, Any] = {}
    left_part = ", ".join(f"{n!r}: l[{n!r}]" for n in lnames)
    right_part = ", ".join(f"{new!r}: r[{old!r}]" for old, new in rmap)
    left_null = ", ".join(f"{n!r}: None" for n in lnames)
    right_null = ", ".join(f"{new!r}: None" for _, new in rmap)
    exec(
        f"def merge(l, r):\n    return {{{left_part}{', ' if left_part and right_part else ''}{right_part}}}\n"
        f"def merge_lnull(r):\n    return {{{left_null}{', ' if left_null and right_part else ''}{right_part}}}\n"
        f"def merge_rnull(l):\n    return {{{left_part}{', ' if left_part and right_null else ''}{right_null}}}\n",
        ns,
    )
    merge, merge_lnull, merge_rnull = ns["merge"], ns["merge_lnull"], ns["merge_rnull"]
    out: list = []
    if kind == "innerunique":
        seen: set = set()
        for d in lrows:
            k = key_of(d, lkeys)
            if k is None or k in seen:
                continue
            seen.add(k)
            for r in index.get(k, ()):
                out.append(merge(d, r))
        return out
    matched_right: set[int] = set()
    track = kind in ("rightouter", "fullouter")
    for d in lrows:
        k = key_of(d, lkeys)
        matches = index.get(k) if k is not None else None
        if matches:
            for r in matches:
                out.append(merge(d, r))
                if track:
                    matched_right.add(id(r))
        elif kind in ("leftouter", "fullouter"):
            out.append(merge_rnull(d))
    if track:
        out.extend(merge_lnull(r) for r in rrows if id(r) not in matched_right)
    return out


def _expand_value(v: object, bag_as_array: bool) -> list:
    c = v.__class__
    if c is list:
        return v  # type: ignore[return-value]
    if c is dict:
        if bag_as_array:
            return [[k, x] for k, x in v.items()]  # type: ignore[attr-defined]
        return [{k: x} for k, x in v.items()]  # type: ignore[attr-defined]
    return [v]  # null and scalars expand to one row holding the value itself


def _cast(pred: Callable[[object], bool]) -> Callable[[object], object]:
    return lambda v: v if pred(v) else None


_TYPE_CASTS: dict[str, Callable[[object], object]] = {
    "dynamic": lambda v: v,
    "string": _cast(lambda v: v.__class__ is str),
    "long": _cast(lambda v: v.__class__ is int),
    "int": _cast(lambda v: v.__class__ is int and -(2**31) <= v < 2**31),  # type: ignore[operator]
    "real": lambda v: float(v) if v.__class__ in (int, float) else None,  # type: ignore[arg-type]
    "double": lambda v: float(v) if v.__class__ in (int, float) else None,  # type: ignore[arg-type]
    "bool": _cast(lambda v: v.__class__ is bool),
    "boolean": _cast(lambda v: v.__class__ is bool),
}
