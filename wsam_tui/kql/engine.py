"""Public entry points: :func:`parse` (compile once) and :func:`run` (execute), and the result type."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from .compiler import CompiledQuery, Ctx, _materialize, compile_query
from .errors import KqlError, KqlSyntaxError
from .functions import NOW
from .parser import parse_query
from .values import render

__all__ = ["KqlResult", "parse", "run"]

TableSource = Iterable[dict] | Callable[[], Iterable[dict]]

_NONE = type(None)


class KqlResult:
    """Rows in ARG's ``objectArray`` form plus typed columns.

    ``columns``: ``[(name, type)]`` with ARG types ``string|integer|number|boolean|object|datetime``.
    ``rows``: new dicts (keys in column order); datetimes are rendered as ISO strings.
    """

    __slots__ = ("columns", "rows")

    def __init__(self, columns: list[tuple[str, str]], rows: list[dict]):
        self.columns = columns
        self.rows = rows

    def as_table(self) -> dict:
        """ARG's ``table`` result format: ``{"columns": [{"name", "type"}], "rows": [[...]]}``."""
        names = [n for n, _ in self.columns]
        return {
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "rows": [[r[n] for n in names] for r in self.rows],
        }

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"KqlResult(columns={self.columns!r}, rows=<{len(self.rows)} rows>)"


def parse(query_text: str) -> CompiledQuery:
    """Parse and compile a query. The result is immutable and can be run any number of times."""
    if not isinstance(query_text, str):
        raise TypeError("query_text must be a str")
    return _parse_cached(query_text)


@lru_cache(maxsize=256)
def _parse_cached(query_text: str) -> CompiledQuery:
    try:
        return compile_query(query_text, parse_query(query_text))
    except RecursionError:
        raise KqlSyntaxError("the query is nested too deeply") from None


def run(query: str | CompiledQuery, tables: Mapping[str, TableSource], *, now: datetime | None = None) -> KqlResult:
    """Run ``query`` over ``tables`` (names matched case-insensitively).

    ``now`` fixes the value of ``now()``/``ago()`` for this run (default: the current UTC time);
    as in KQL it is one constant for the whole query. Input rows are never mutated.
    """
    cq = query if isinstance(query, CompiledQuery) else parse(query)
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    ctx = Ctx(tables)
    token = NOW.set(now)
    try:
        rows = cq.pipeline.execute(ctx)
        out, names = _materialize(cq.pipeline.scope, rows, ctx)
    except KqlError as e:
        raise e.attach_text(cq.text) from None
    finally:
        NOW.reset(token)
    columns = []
    for n in names:
        classes = {r[n].__class__ for r in out}
        classes.discard(_NONE)
        if datetime in classes or timedelta in classes:
            for r in out:
                r[n] = render(r[n])
        columns.append((n, _column_type(classes)))
    return KqlResult(columns, out)


def _column_type(classes: set) -> str:
    if not classes:
        return "string"
    if classes == {bool}:
        return "boolean"
    if classes == {int}:
        return "integer"
    if classes <= {int, float}:
        return "number"
    if classes == {str} or classes == {timedelta} or classes == {str, timedelta}:
        return "string"
    if classes == {datetime}:
        return "datetime"
    return "object"
