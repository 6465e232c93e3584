"""A KQL-subset engine over JSON documents (pure Python, no I/O, stdlib only).

Used by the ARM simulator to answer Azure Resource Graph queries over its in-memory fleet and by
the console's ``:kql`` over the offline cache. Anything outside the subset raises an error that
names it; the engine never guesses. See ``docs/kql.md`` for the supported subset.

    >>> from wsam_tui.kql import run
    >>> run("resources | where type =~ 'x' | project id", {"resources": rows}).rows
"""

from .compiler import STANDARD_COLUMNS, CompiledQuery
from .engine import KqlResult, parse, run
from .errors import KqlError, KqlSyntaxError, KqlUnsupportedError

__all__ = [
    "STANDARD_COLUMNS",
    "CompiledQuery",
    "KqlError",
    "KqlResult",
    "KqlSyntaxError",
    "KqlUnsupportedError",
    "parse",
    "run",
]
