"""The answer to a `:kql` query: a title with the query, where the rows came from and how old they are,
then the rows in a scrolling table; or the error, with a caret under the place it names.

Rows are at most ``kqlquery.DEFAULT_LIMIT`` (1,000), so a ``DataTable`` fed ``rich.text.Text`` cells is
fine here (research/textual.md §2: only the 50k-row fleet table needs the Line API). Every value is
shown as ``Text(clean_text(...))``, never a markup string; objects as compact JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Static

from ..ages import age_text
from ..fleet.model import clean_text
from ..kqlquery import SOURCE_CACHE, KqlAnswer

CELL_LIMIT = 200  # characters shown in a cell; `c` copies the whole value, enter shows it


def cell_text(value: Any, *, limit: int | None = CELL_LIMIT) -> str:
    """A value as one line of text: strings as they are, objects as compact JSON, null as empty."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    else:
        text = str(value)
    return clean_text(text, limit=limit)


def source_text(answer: KqlAnswer, now: datetime | None = None) -> str:
    """'Resource Graph', or 'cache, as of 2026-11-28 12:00 UTC (14 min old)'."""
    if answer.source != SOURCE_CACHE:
        return answer.source
    if answer.as_of is None:
        return "cache (empty)"
    when = answer.as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"cache, as of {when} ({age_text(answer.as_of, now).replace(' ago', ' old')})"


def count_text(answer: KqlAnswer, limit: int) -> str:
    shown = len(answer.rows)
    text = f"{shown:,} row{'s' * (shown != 1)}"
    if answer.truncated:
        of = f" of {answer.total:,}" if answer.total is not None and answer.total > shown else ""
        text += f"{of}, truncated at {limit:,}"
    return text


class KqlErrorMessage(Static):
    """A refused query: the line it names with a caret under the position, then the message (plain text)."""

    DEFAULT_CSS = "KqlErrorMessage { color: $text-error; padding: 0 1; }"

    def __init__(self, query: str, error: Exception, **kwargs) -> None:
        super().__init__(Content(self.describe(query, error)), **kwargs)

    @staticmethod
    def describe(query: str, error: Exception) -> str:
        line = getattr(error, "line", None)
        column = getattr(error, "column", None)
        lines: list[str] = []
        if isinstance(line, int) and isinstance(column, int):
            source = query.split("\n")
            if 1 <= line <= len(source):
                shown = clean_text(source[line - 1])
                lines += [shown, " " * min(max(column - 1, 0), len(shown)) + "^"]
        describe = getattr(error, "describe", None)
        lines.append(clean_text(describe() if callable(describe) else str(error), limit=2000))
        return "\n".join(lines)


class KqlResultScreen(Screen[None]):
    """The rows of a `:kql` answer (or its error). ``escape``/``q`` close; ``c`` copies the cell under the
    cursor (OSC 52, so it works over SSH where the terminal allows it); ``enter`` shows the whole value."""

    DEFAULT_CSS = """
    KqlResultScreen { layout: vertical; }
    KqlResultScreen #kql-query { height: auto; max-height: 4; padding: 0 1; text-style: bold; }
    KqlResultScreen #kql-meta { height: auto; padding: 0 1; color: $text-muted; }
    KqlResultScreen #kql-rows { height: 1fr; }
    KqlResultScreen #kql-cell { height: auto; max-height: 8; padding: 0 1; border-top: solid $primary; display: none; }
    KqlResultScreen #kql-cell.-open { display: block; }
    KqlResultScreen #kql-keys { height: 1; padding: 0 1; color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close", id="kql.close"),
        Binding("c", "copy_cell", "Copy cell", id="kql.copy"),
    ]

    def __init__(self, query: str, answer: KqlAnswer | None = None, *, error: Exception | None = None,
                 now: datetime | None = None, limit: int | None = None, **kwargs) -> None:
        if (answer is None) == (error is None):
            raise ValueError("give an answer or an error")
        super().__init__(**kwargs)
        self.query_text = query
        self.answer = answer
        self.error = error
        self.now = now
        self.limit = limit or (len(answer.rows) if answer else 0) or 1

    def compose(self) -> ComposeResult:
        yield Static(Content(clean_text(self.query_text, limit=1000)), id="kql-query")
        if self.error is not None:
            yield KqlErrorMessage(self.query_text, self.error, id="kql-error")
        else:
            yield Static(Content(self.meta_text()), id="kql-meta")
            yield DataTable(id="kql-rows", zebra_stripes=True, cursor_type="cell")
            yield Static(Content(""), id="kql-cell")
        keys = "escape/q close" if self.error is not None else "escape/q close · c copy cell · enter whole value"
        yield Static(Content(keys), id="kql-keys")

    def meta_text(self) -> str:
        assert self.answer is not None
        parts = [source_text(self.answer, self.now), count_text(self.answer, self.limit), *self.answer.notes]
        return " · ".join(clean_text(p, limit=300) for p in parts)

    def on_mount(self) -> None:
        if self.answer is None:
            return
        table = self.query_one(DataTable)
        names = [n for n, _ in self.answer.columns]
        for name in names:
            table.add_column(Text(clean_text(name, limit=60)), key=name)
        for i, row in enumerate(self.answer.rows):
            table.add_row(*(Text(cell_text(row.get(n))) for n in names), key=str(i))
        table.focus()

    # ---- actions ----------------------------------------------------------------------------------

    def current_value(self) -> Any:
        """The value under the table's cursor (None when there is no row)."""
        if self.answer is None or not self.answer.rows:
            return None
        table = self.query_one(DataTable)
        row, column = table.cursor_coordinate
        if not (0 <= row < len(self.answer.rows) and 0 <= column < len(self.answer.columns)):
            return None
        return self.answer.rows[row].get(self.answer.columns[column][0])

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy_cell(self) -> None:
        if self.answer is None or not self.answer.rows:
            return
        text = cell_text(self.current_value(), limit=None)
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {len(text):,} characters", markup=False)

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        # enter (or a click on the highlighted cell): the whole value, pretty-printed, under the table
        self.show_cell()

    def show_cell(self) -> None:
        cell = self.query_one("#kql-cell", Static)
        value = self.current_value()
        if isinstance(value, dict | list):
            text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
        else:
            text = cell_text(value, limit=None)
        cell.update(Content(clean_text(text, limit=20000, keep_newlines=True)))
        cell.toggle_class("-open")

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        cell = self.query_one("#kql-cell", Static)
        if cell.has_class("-open"):
            cell.remove_class("-open")
