"""Errors raised by the KQL engine.

Every failure is a :class:`KqlError` with a stable ``code`` (the ARG error-detail code the
simulator puts in its response) and, where the query text is known, a position. The engine
never falls back to a guess: anything outside the supported subset is a
:class:`KqlUnsupportedError` naming the operator or function.
"""

from __future__ import annotations

__all__ = ["KqlError", "KqlSyntaxError", "KqlUnsupportedError", "line_col"]


def line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based (line, column) of offset ``pos`` in ``text``."""
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


class KqlError(Exception):
    """A query the engine refuses to answer.

    ``code`` is one of ``ParserFailure``, ``UnsupportedOperator``, ``UnsupportedFunction``,
    ``UnknownTable``, ``InvalidQuery``. ``position`` is a 0-based offset into the query text
    (``None`` when it is not known); ``line``/``column`` are 1-based.
    """

    def __init__(self, code: str, message: str, position: int | None = None, *, text: str | None = None):
        self.code = code
        self.message = message
        self.position = position
        self.line: int | None = None
        self.column: int | None = None
        if position is not None and text is not None:
            self.line, self.column = line_col(text, position)
        super().__init__(code, message)

    def attach_text(self, text: str) -> KqlError:
        """Fill in line/column once the query text is known (errors raised deep in the compiler)."""
        if self.position is not None and self.line is None:
            self.line, self.column = line_col(text, self.position)
        return self

    def __str__(self) -> str:
        where = ""
        if self.line is not None:
            where = f" (line {self.line}, column {self.column})"
        elif self.position is not None:
            where = f" (at offset {self.position})"
        return f"{self.code}: {self.message}{where}"

    def to_dict(self) -> dict:
        """ARG-style error detail: ``{"code", "message", "line"?, "characterPositionInLine"?}``."""
        d: dict = {"code": self.code, "message": self.message}
        if self.line is not None:
            d["line"] = self.line
            d["characterPositionInLine"] = self.column
        return d


class KqlSyntaxError(KqlError):
    """The query text does not parse (code ``ParserFailure``)."""

    def __init__(self, message: str, position: int | None = None, *, text: str | None = None):
        super().__init__("ParserFailure", message, position, text=text)


class KqlUnsupportedError(KqlError):
    """Valid KQL that this engine does not implement (``UnsupportedOperator``/``UnsupportedFunction``)."""

    def __init__(self, code: str, message: str, position: int | None = None, *, text: str | None = None):
        super().__init__(code, message, position, text=text)
