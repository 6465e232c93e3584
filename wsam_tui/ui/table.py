"""The server table with the capability matrix: one Line-API widget for 50,000 rows.

Why a custom widget: Textual's ``DataTable`` measures every cell of every row it is given (about 12 s
for 50,000 rows, again after each filter); here the rows live outside the widget, prepared once into
padded display strings and one byte per capability cell, and a filter or a sort only swaps the list of
row indices shown (research/textual.md §2). A paint renders the visible lines only; a cursor move
repaints two lines.

    table.set_data(servers, default_columns(subscription_names))   # once per snapshot
    table.set_view(index.filter(query))                             # every keystroke: indices into servers
    table.update_rows([server])                                     # a refreshed record, in place

Untrusted text: every string shown is drawn as a ``Segment`` with a style, never parsed as markup, and
anything that still carries a control character is passed through ``clean_text`` once more when
prepared (records are cleaned on arrival; this is the second lock).

Keys (bindings with ``show=False``; ids for keymaps in parentheses): up/k ``cursor_up``
(servertable.cursor_up), down/j ``cursor_down``, pageup/pagedown ``page_up``/``page_down``, home/g
``first``, end/G ``last``, left/h and right/l scroll one column, enter ``select`` (posts
``RowSelected``), space ``toggle_mark`` (marks and moves down). ``mark_all_shown`` and ``clear_marks``
are actions without a default key. Mouse: a click moves the cursor (on the mark column it also toggles
the mark), a double click selects, a click on a header posts ``SortRequested``, the wheel scrolls.

Colours come from component classes (``servertable--on``, ``--partial``, ``--off``, ``--na``,
``--unknown``, ``--header``, ``--cursor``, ``--marked``, ``--odd``) whose default CSS reads the theme
variables ``$cap-on`` … ``$row-marked``: the hosting app must provide them, e.g. with
``get_theme_variable_defaults`` returning ``wsam_tui.ui.themes.VARIABLE_DEFAULTS``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import ClassVar, Literal

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from wsam_tui.fleet.capabilities import CATALOG, Capability
from wsam_tui.fleet.model import CapabilityState, Kind, Server, State, clean_text

from . import glyphs as g

__all__ = ["ColumnSpec", "ServerTable", "TableData", "default_columns"]

HEADER_LINES = 2  # group labels over short names
MARK_ON, MARK_OFF = "[x] ", "    "
SEPARATOR = "│ "
ELLIPSIS = "…"
Align = Literal["left", "right", "center"]


# ---- columns ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One column: a text value of a server, or a capability cell (``capability`` set).

    ``from_states`` instead of ``value``: a text computed from the row's capability codes (one
    ``glyphs.CODE`` byte per capability column, in column order), memoised per distinct pattern; the
    coverage column uses it, which costs nothing per server.
    ``frozen`` columns must come first; they stay on the left while the rest scrolls horizontally.
    Capability columns are grouped by ``group`` (a label over consecutive columns of one group, and a
    separator between groups). ``id`` is what ``SortRequested`` carries: the default columns use the
    sort keys of ``wsam_tui.fleet.query.COLUMNS``."""

    id: str
    header: str
    value: Callable[[Server], str] | None = None
    from_states: Callable[[bytes], str] | None = None
    capability: str | None = None
    group: str = ""
    max_width: int = 24
    min_width: int = 1
    align: Align = "left"
    frozen: bool = False

    @classmethod
    def for_capability(cls, cap: Capability) -> ColumnSpec:
        return cls(cap.id, cap.short, capability=cap.id, group=str(cap.group), max_width=8, min_width=3,
                   align="center")


def _age(then: datetime | None, now: datetime | None) -> str:
    if then is None:
        return "—"
    seconds = ((now or datetime.now(UTC)) - then).total_seconds()
    if seconds < 60:
        return "now" if seconds > -300 else "?"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


_ON, _PARTIAL, _OFF = g.CODE[State.ON], g.CODE[State.PARTIAL], g.CODE[State.OFF]


def coverage_text(codes: bytes) -> str:
    """Whole-percent coverage of a row, as ``Server.coverage`` counts it (on 1, partial ½, off 0; n/a
    and unknown left out), from the row's capability codes."""
    on, partial = codes.count(_ON), codes.count(_PARTIAL)
    scored = on + partial + codes.count(_OFF)
    return f"{int((on + partial / 2) / scored * 100 + 0.5)}%" if scored else "—"


def default_columns(subscription_names: Mapping[str, str] | None = None, *, now: datetime | None = None,
                    capabilities: Sequence[Capability] = CATALOG) -> list[ColumnSpec]:
    """The console's columns: name (frozen), kind, subscription (display name), resource group, region,
    OS and version, power/connection state, agent version, coverage, age, then one per capability.

    ``now`` fixes the clock for the age column (tests, snapshots); by default it is read per row."""
    names = {k.lower(): v for k, v in (subscription_names or {}).items()}

    def subscription(s: Server) -> str:
        return names.get(s.subscription_id.lower()) or s.subscription_id

    def os(s: Server) -> str:
        return f"{s.os_name} {s.os_version}" if s.os_version else s.os_name

    def age(s: Server) -> str:
        return _age(s.fetched_at, now)

    return [
        ColumnSpec("name", "Name", attrgetter("name"), max_width=32, min_width=8, frozen=True),
        ColumnSpec("kind", "Kind", lambda s: "Arc" if s.kind is Kind.ARC else "VM", max_width=4),
        ColumnSpec("subscription", "Subscription", subscription, max_width=24),
        ColumnSpec("resourceGroup", "Resource group", attrgetter("resource_group"), max_width=24),
        ColumnSpec("location", "Region", attrgetter("location"), max_width=16),
        ColumnSpec("os", "OS", os, max_width=40),
        ColumnSpec("state", "State", attrgetter("state"), max_width=14),
        ColumnSpec("agentVersion", "Agent", attrgetter("agent_version"), max_width=16),
        ColumnSpec("coverage", "Cov", from_states=coverage_text, max_width=4, align="right"),
        ColumnSpec("age", "Age", age, max_width=4, align="right"),
        *(ColumnSpec.for_capability(c) for c in capabilities),
    ]


# ---- display strings ----------------------------------------------------------------------------


def _display(value: object) -> str:
    """Second lock on untrusted text: anything not printable goes through ``clean_text`` again."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text if text.isprintable() else clean_text(text)


def _value(spec: ColumnSpec, server: Server, codes: bytes) -> object:
    if spec.from_states is not None:
        return spec.from_states(codes)
    return spec.value(server) if spec.value is not None else ""


def _width(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


def fit(text: str, width: int, align: Align = "left") -> str:
    """``text`` in exactly ``width`` cells: padded, or cropped with an ellipsis (wide-character safe)."""
    if width <= 0:
        return ""
    if text.isascii():
        if len(text) > width:
            return text[: width - 1] + ELLIPSIS
        size = len(text)
    else:
        if len(text) > width * 4 + 16:  # a 10 kB name: no need to measure what will be cropped
            text = text[: width * 4 + 16]
        size = cell_len(text)
        if size > width:
            return set_cell_size(set_cell_size(text, width - 1) + ELLIPSIS, width)
    pad = width - size
    if not pad:
        return text
    if align == "right":
        return " " * pad + text
    if align == "center":
        left = pad // 2
        return " " * left + text + " " * (pad - left)
    return text + " " * pad


@dataclass(slots=True)
class _Column:
    spec: ColumnSpec
    width: int
    slot: int  # index into a row's text cells, or into its capability bytes
    sep: bool = False  # a separator is drawn before this column
    start: int = 0  # first cell of the column (after its separator) within its region
    cells: tuple[str, ...] = ()  # capability columns: the padded glyph per state code


@dataclass(slots=True)
class TableData:
    """Everything the table draws, prepared once from a snapshot; build it in a thread if you like
    (``TableData.build`` touches no widget) and hand it to ``ServerTable.set_prepared``."""

    columns: tuple[ColumnSpec, ...]
    layout: list[_Column]
    ids: list[str]
    index_of: dict[str, int]
    cells: list[tuple[str, ...]]  # per row: padded text cells (each followed by its one-cell gap)
    states: list[bytes]  # per row: one glyphs.CODE per capability column
    glyphs: Mapping[State, str] = field(default_factory=lambda: g.UNICODE)

    @classmethod
    def build(cls, servers: Sequence[Server], columns: Sequence[ColumnSpec],
              glyphs: Mapping[State, str] = g.UNICODE) -> TableData:
        columns = tuple(columns)
        text_cols = [c for c in columns if c.capability is None]
        cap_cols = [c for c in columns if c.capability is not None]
        frozen = [c.frozen for c in columns]
        if any(frozen[i] and not frozen[i - 1] for i in range(1, len(frozen))):
            raise ValueError("frozen columns must come first")
        if any(c.frozen and c.capability for c in columns):
            raise ValueError("capability columns cannot be frozen")

        states = cls._states(servers, [c.capability or "" for c in cap_cols])

        # Text cells: raw values per column, widths over the distinct values, then padded strings
        # shared between rows that show the same value (kind, region, state … repeat a lot).
        padded_columns: list[list[str]] = []
        widths: dict[str, int] = {}
        for spec in text_cols:
            getter = spec.value
            if spec.from_states is not None:
                by_codes = spec.from_states
                memo_codes: dict[bytes, str] = {}
                raw = [memo_codes[c] if c in memo_codes else memo_codes.setdefault(c, _display(by_codes(c)))
                       for c in states]
            elif getter is not None:
                raw = [v if v.__class__ is str and v.isprintable() else _display(v) for v in map(getter, servers)]
            else:
                raw = [""] * len(servers)
            longest = max(map(_width, set(raw)), default=0)
            width = max(spec.min_width, _width(spec.header) + 1, min(spec.max_width, longest))  # +1: sort arrow
            widths[spec.id] = width
            memo: dict[str, str] = {}
            align = spec.align
            out = []
            append = out.append
            for value in raw:
                cell = memo.get(value)
                if cell is None:
                    cell = fit(value, width, align) + " "
                    if len(memo) < 4096:
                        memo[value] = cell
                append(cell)
            padded_columns.append(out)
        cells = list(zip(*padded_columns, strict=True)) if padded_columns else [()] * len(servers)

        layout = cls._layout(columns, widths, glyphs)
        ids = [s.id for s in servers]
        return cls(columns, layout, ids, {sid: i for i, sid in enumerate(ids)}, cells, states, glyphs)

    @staticmethod
    def _states(servers: Sequence[Server], cap_ids: list[str]) -> list[bytes]:
        """One code byte per capability column per row (a missing cell is unknown)."""
        if not cap_ids:
            return [b""] * len(servers)
        code = dict(g.CODE).__getitem__
        unknown = g.UNKNOWN_CODE
        pick = itemgetter(*cap_ids) if len(cap_ids) > 1 else (lambda caps: (caps[cap_ids[0]],))
        state_of = attrgetter("state")
        out = []
        append = out.append
        for s in servers:
            caps = s.capabilities
            try:
                append(bytes(map(code, map(state_of, pick(caps)))))
            except (KeyError, AttributeError, TypeError):  # a missing cell, or not a CapabilityState
                cells = [caps.get(cid) if isinstance(caps, Mapping) else None for cid in cap_ids]
                append(bytes([code(c.state) if isinstance(c, CapabilityState) and c.state in g.CODE else unknown
                              for c in cells]))
        return out

    @staticmethod
    def _layout(columns: Sequence[ColumnSpec], widths: Mapping[str, int],
                glyphs: Mapping[State, str]) -> list[_Column]:
        layout: list[_Column] = []
        text_slot = cap_slot = 0
        for spec in columns:
            if spec.capability is None:
                layout.append(_Column(spec, widths[spec.id], text_slot))
                text_slot += 1
            else:
                width = max(spec.min_width, min(spec.max_width, _width(spec.header)))
                layout.append(_Column(spec, width, cap_slot))
                cap_slot += 1
        # Separators between groups; a group's label must fit over its columns (widen its last one).
        runs: list[list[_Column]] = []
        for col in layout:
            if col.spec.frozen:
                continue
            if runs and runs[-1][-1].spec.group == col.spec.group:
                runs[-1].append(col)
            else:
                col.sep = bool(runs)  # the first unfrozen column follows the frozen columns' separator
                runs.append([col])
        for run in runs:
            label = run[0].spec.group
            short = _width(label) + 1 - sum(c.width + 1 for c in run)
            if label and short > 0:
                run[-1].width += short
        # Capability cells per state code, and the start of every column within its region.
        for col in layout:
            if col.spec.capability is not None:
                col.cells = tuple(fit(glyphs[state], col.width, "center") + " " for state in g.STATES)
        x_frozen, x = len(MARK_OFF), 0
        for col in layout:
            if col.spec.frozen:
                col.start = x_frozen
                x_frozen += col.width + 1
            else:
                x += len(SEPARATOR) if col.sep else 0
                col.start = x
                x += col.width + 1
        return layout


def _crop(segments: list[Segment], start: int, length: int) -> tuple[list[Segment], int]:
    """The segments between cells ``start`` and ``start + length`` (a wide character cut in two
    becomes spaces), and how many cells they take."""
    out: list[Segment] = []
    end = start + length
    x = cells = 0
    for segment in segments:
        text = segment.text
        ascii_text = text.isascii()
        w = len(text) if ascii_text else cell_len(text)
        nx = x + w
        if nx <= start:
            x = nx
            continue
        if x >= end:
            break
        if x < start or nx > end:
            a, b = max(start - x, 0), min(end, nx) - x
            if ascii_text:
                segment = Segment(text[a:b], segment.style)
            else:
                if a:
                    segment = segment.split_cells(a)[1]
                if b - a < w - a:
                    segment = segment.split_cells(b - a)[0]
            out.append(segment)
            cells += b - a
        else:
            out.append(segment)
            cells += w
        x = nx
    return out, cells


# ---- the widget ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Palette:
    rows: tuple[Style, Style, Style, Style]  # base, odd, marked, cursor
    caps: tuple[tuple[Style, ...], ...]  # per row kind: a style per state code
    header: Style
    muted: Style


_BASE, _ODD, _MARKED, _CURSOR = range(4)


class ServerTable(ScrollView, can_focus=True):
    """Servers and their capability matrix. Data lives outside: ``set_data`` / ``set_view`` /
    ``update_rows``; marks are a set of resource ids that survives filtering, sorting and refreshes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False, id="servertable.cursor_up"),
        Binding("down,j", "cursor_down", "Down", show=False, id="servertable.cursor_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="servertable.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="servertable.page_down"),
        Binding("home,g", "first", "First", show=False, id="servertable.first"),
        Binding("end,G", "last", "Last", show=False, id="servertable.last"),
        Binding("left,h", "scroll_column(-1)", "Scroll left", show=False, id="servertable.scroll_left"),
        Binding("right,l", "scroll_column(1)", "Scroll right", show=False, id="servertable.scroll_right"),
        Binding("enter", "select", "Open", show=False, id="servertable.select"),
        Binding("space", "toggle_mark", "Mark", show=False, id="servertable.toggle_mark"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "servertable--header", "servertable--cursor", "servertable--marked", "servertable--odd",
        *(f"servertable--{suffix}" for suffix in g.CLASS_SUFFIX.values()),
    }

    DEFAULT_CSS = """
    ServerTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        /* Always there: a scrollbar that comes and goes as a filter empties the view re-lays out the screen. */
        overflow-y: scroll;
        & > .servertable--header { background: $panel; color: $foreground; text-style: bold; }
        &:ansi > .servertable--header { background: ansi_default; color: ansi_default; text-style: bold underline; }
        & > .servertable--odd { background: $surface-lighten-1 50%; }
        &:dark > .servertable--odd { background: $surface-darken-1 40%; }
        &:ansi > .servertable--odd { background: ansi_default; }
        & > .servertable--marked { background: $row-marked; color: $foreground; }
        &:ansi > .servertable--marked { background: $row-marked; color: ansi_default; text-style: bold; }
        & > .servertable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .servertable--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .servertable--on { color: $cap-on; }
        & > .servertable--partial { color: $cap-partial; }
        & > .servertable--off { color: $cap-off; }
        & > .servertable--na { color: $cap-na; }
        & > .servertable--unknown { color: $cap-unknown; }
    }
    """

    class _Message(Message):
        def __init__(self, table: ServerTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> ServerTable:
            return self.table

    class RowHighlighted(_Message):
        """The cursor is on another server (``None``: nothing is shown)."""

        def __init__(self, table: ServerTable, server_id: str | None) -> None:
            super().__init__(table)
            self.server_id = server_id

    class RowSelected(_Message):
        """Enter (or a double click) on a server."""

        def __init__(self, table: ServerTable, server_id: str) -> None:
            super().__init__(table)
            self.server_id = server_id

    class SortRequested(_Message):
        """A click on a column header; the app sorts and calls ``set_view`` (and ``set_sort_indicator``)."""

        def __init__(self, table: ServerTable, column_id: str) -> None:
            super().__init__(table)
            self.column_id = column_id

    class MarksChanged(_Message):
        """The number of marked servers (shown or not) changed."""

        def __init__(self, table: ServerTable, count: int) -> None:
            super().__init__(table)
            self.count = count

    def __init__(self, *, empty_message: str = "No servers to show", glyphs: Mapping[State, str] = g.UNICODE,
                 name: str | None = None, id: str | None = None, classes: str | None = None,
                 disabled: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.empty_message = empty_message
        self._glyphs = glyphs
        self._data = TableData.build((), (), glyphs)
        self._frozen: list[_Column] = []
        self._scrolling: list[_Column] = []
        self._scroll_starts: list[int] = []
        self._frozen_width = len(MARK_OFF) + len(SEPARATOR)
        self._scroll_width = 0
        self._view: list[int] = []
        self._cursor = 0
        self._highlighted: str | None = None
        self._marks: set[str] = set()
        self._sort: tuple[str, bool] | None = None
        self._palette: _Palette | None = None

    # ---- data ---------------------------------------------------------------------------------

    def set_data(self, servers: Sequence[Server], columns: Sequence[ColumnSpec], *,
                 view: list[int] | None = None) -> None:
        """A new snapshot: display strings prepared once. Shows ``view`` (indices into ``servers``),
        or every server in order. Marks of servers no longer present are dropped."""
        self.set_prepared(TableData.build(servers, columns, self._glyphs), view=view)

    def set_prepared(self, data: TableData, *, view: list[int] | None = None) -> None:
        self._data = data
        self._frozen = [c for c in data.layout if c.spec.frozen]
        self._scrolling = [c for c in data.layout if not c.spec.frozen]
        self._scroll_starts = [c.start for c in self._scrolling]
        self._frozen_width = len(MARK_OFF) + sum(c.width + 1 for c in self._frozen) + len(SEPARATOR)
        last = self._scrolling[-1] if self._scrolling else None
        self._scroll_width = last.start + last.width + 1 if last else 0
        if self._marks:
            kept = {m for m in self._marks if m in data.index_of}
            if len(kept) != len(self._marks):
                self._marks = kept
                self.post_message(self.MarksChanged(self, len(kept)))
        self.set_view(list(range(len(data.ids))) if view is None else view)

    def set_view(self, indices: list[int]) -> None:
        """Show these rows (indices into the servers given to ``set_data``), in this order. The list is
        kept, not copied. The cursor stays on the same server when it is still shown (at the same
        height on screen when possible), else at the nearest position."""
        n = len(self._data.ids)
        if indices and (min(indices) < 0 or max(indices) >= n):
            raise IndexError("set_view: row index out of range")
        old_pos, old_top = self._cursor, self._scroll_y
        keep = self._data.index_of.get(self._highlighted) if self._highlighted is not None else None
        pos = -1
        if keep is not None:
            try:
                pos = indices.index(keep)
            except ValueError:
                pos = -1
        if pos < 0:
            pos = min(old_pos, len(indices) - 1)
        self._view = indices
        self._cursor = max(pos, 0)
        size = Size(self._frozen_width + self._scroll_width, len(indices) + HEADER_LINES)
        if size != self.virtual_size:
            # Not through the reactive's setter: that lays out the whole screen (about 30 ms) on every filter
            # keystroke, though this widget's own size does not depend on its rows. The scrollbars follow
            # (and lay out only when one appears or goes).
            self.set_reactive(ServerTable.virtual_size, size)
            self._scroll_update(size)
        body = self._body_height()
        if not indices:
            self.scroll_to(y=0, animate=False, immediate=True)
        elif body > 0:
            top = self._cursor - (old_pos - old_top)  # keep the cursor's line on screen where it was
            top = min(max(top, self._cursor - body + 1, 0), self._cursor, max(len(indices) - body, 0))
            self.scroll_to(y=top, animate=False, immediate=True)
        self.refresh()
        self._announce()

    def update_rows(self, changed: Iterable[Server]) -> int:
        """Replace the rows of these servers (matched by id) in place: same widths, same order, cursor
        and marks untouched; visible ones are repainted. Servers not in the data are ignored (a new
        server needs ``set_data``). Returns how many rows were updated."""
        data = self._data
        text_cols = [c for c in data.layout if c.spec.capability is None]
        cap_ids = [c.spec.capability or "" for c in data.layout if c.spec.capability is not None]
        updated: set[int] = set()
        for server in changed:
            idx = data.index_of.get(server.id)
            if idx is None:
                continue
            codes = data.states[idx] = TableData._states((server,), cap_ids)[0]
            data.cells[idx] = tuple(fit(_display(_value(c.spec, server, codes)), c.width, c.spec.align) + " "
                                    for c in text_cols)
            updated.add(idx)
        if updated:
            top = self._scroll_y
            for pos in range(top, min(top + self._body_height(), len(self._view))):
                if self._view[pos] in updated:
                    self._refresh_position(pos)
        return len(updated)

    # ---- state the app reads --------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """Rows shown (after the app's filter)."""
        return len(self._view)

    @property
    def cursor_row(self) -> int:
        """Position of the cursor in the shown rows."""
        return self._cursor

    @property
    def highlighted_id(self) -> str | None:
        return self._data.ids[self._view[self._cursor]] if self._view else None

    @property
    def view(self) -> Sequence[int]:
        return self._view

    @property
    def marks(self) -> frozenset[str]:
        return frozenset(self._marks)

    def is_marked(self, server_id: str) -> bool:
        return server_id in self._marks

    def set_marks(self, server_ids: Iterable[str]) -> None:
        """Replace the marks (e.g. restore a saved selection); unknown ids are ignored."""
        index_of = self._data.index_of
        self._marks = {sid for sid in server_ids if sid in index_of}
        self.refresh()
        self.post_message(self.MarksChanged(self, len(self._marks)))

    def set_sort_indicator(self, column_id: str | None, descending: bool = False) -> None:
        """Show which column the view is sorted by (an arrow after its header)."""
        self._sort = (column_id, descending) if column_id else None
        self.refresh(Region(0, 0, self.size.width, HEADER_LINES))

    @property
    def columns_drawn(self) -> list[ColumnSpec]:
        """The columns as drawn, left to right (the frozen ones first)."""
        return [c.spec for c in (*self._frozen, *self._scrolling)]

    def show_column(self, column_id: str) -> None:
        """Scroll the unfrozen columns as little as needed to bring this one into view (a frozen one is)."""
        col = next((c for c in self._scrolling if c.spec.id == column_id), None)
        if col is None:
            return
        room = max(self._viewport()[0] - self._frozen_width, 0)
        x = round(self.scroll_x)
        if col.start < x:
            target = col.start
        elif col.start + col.width + 1 > x + room:
            target = min(col.start, col.start + col.width + 1 - room)
        else:
            return
        self.scroll_to(x=min(target, self.max_scroll_x), animate=False, immediate=True)

    def move_to(self, server_id: str) -> bool:
        """Put the cursor on this server if it is shown (e.g. a jump from the command palette)."""
        idx = self._data.index_of.get(server_id)
        if idx is None:
            return False
        try:
            pos = self._view.index(idx)
        except ValueError:
            return False
        self._move_cursor(pos)
        return True

    # ---- actions ------------------------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self._move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        page = max(self._body_height() - 1, 1)
        self._move_cursor(self._cursor - page, scroll_by=-page)

    def action_page_down(self) -> None:
        page = max(self._body_height() - 1, 1)
        self._move_cursor(self._cursor + page, scroll_by=page)

    def action_first(self) -> None:
        self._move_cursor(0)

    def action_last(self) -> None:
        self._move_cursor(len(self._view) - 1)

    def action_select(self) -> None:
        server_id = self.highlighted_id
        if server_id is not None:
            self.post_message(self.RowSelected(self, server_id))

    def action_toggle_mark(self) -> None:
        if not self._view:
            return
        self._toggle(self._cursor)
        self._move_cursor(self._cursor + 1)

    def action_mark_all_shown(self) -> None:
        ids = self._data.ids
        before = len(self._marks)
        self._marks.update([ids[i] for i in self._view])
        if len(self._marks) != before:
            self.refresh()
            self.post_message(self.MarksChanged(self, len(self._marks)))

    def action_clear_marks(self) -> None:
        if self._marks:
            self._marks = set()
            self.refresh()
            self.post_message(self.MarksChanged(self, 0))

    def toggle_mark(self) -> None:
        self.action_toggle_mark()

    def mark_all_shown(self) -> None:
        self.action_mark_all_shown()

    def clear_marks(self) -> None:
        self.action_clear_marks()

    def action_scroll_column(self, direction: int) -> None:
        """Scroll the unfrozen columns by one column."""
        starts, x = self._scroll_starts, round(self.scroll_x)
        if not starts:
            return
        if direction > 0:
            i = bisect_right(starts, x)
            target = starts[i] if i < len(starts) else self.max_scroll_x
        else:
            i = bisect_right(starts, x - 1) - 1
            target = starts[i] if i >= 0 else 0
        self.scroll_to(x=min(target, self.max_scroll_x), animate=False, immediate=True)

    # ---- mouse --------------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x, y = offset
        if y < HEADER_LINES:
            column = self._column_at(x)
            if column is not None:
                event.stop()
                self.post_message(self.SortRequested(self, column.spec.id))
            return
        pos = self._scroll_y + y - HEADER_LINES
        if not 0 <= pos < len(self._view):
            return
        event.stop()
        if x < len(MARK_OFF):  # a checkbox: every click toggles, a double click does not open
            self._toggle(pos)
            self._move_cursor(pos)
            return
        self._move_cursor(pos)
        if event.chain >= 2:
            self.action_select()

    def _column_at(self, x: int) -> _Column | None:
        if x < len(MARK_OFF):
            return None
        for col in self._frozen:
            if col.start <= x < col.start + col.width + 1:
                return col
        if x < self._frozen_width:
            return None
        visible, sx = self._visible_columns(self._viewport()[0])
        vx = x - self._frozen_width + sx
        for i, col in enumerate(visible):
            left = col.start - (len(SEPARATOR) if col.sep and i else 0)
            if left <= vx < col.start + col.width + 1:
                return col
        return None

    # ---- cursor ---------------------------------------------------------------------------------

    @property
    def _scroll_y(self) -> int:
        return round(self.scroll_y)

    def _viewport(self) -> tuple[int, int]:
        """Visible content width and height, without the scrollbars."""
        size = self.container_size
        return size.width - self.scrollbar_size_vertical, size.height - self.scrollbar_size_horizontal

    def _body_height(self) -> int:
        return self._viewport()[1] - HEADER_LINES

    def _refresh_position(self, pos: int) -> None:
        y = pos - self._scroll_y + HEADER_LINES
        if HEADER_LINES <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _move_cursor(self, pos: int, *, scroll_by: int = 0) -> None:
        n = len(self._view)
        if not n:
            return
        pos = min(max(pos, 0), n - 1)
        old = self._cursor
        if pos != old:
            self._cursor = pos
            self._refresh_position(old)
            self._refresh_position(pos)
        body = self._body_height()
        if body > 0:
            top = self._scroll_y + scroll_by
            if pos < top:
                top = pos
            elif pos >= top + body:
                top = pos - body + 1
            top = min(max(top, 0), max(n - body, 0))
            if top != self._scroll_y:
                self.scroll_to(y=top, animate=False, immediate=True)
        self._announce()

    def _announce(self) -> None:
        current = self.highlighted_id
        if current != self._highlighted:
            self._highlighted = current
            self.post_message(self.RowHighlighted(self, current))

    def _toggle(self, pos: int) -> None:
        server_id = self._data.ids[self._view[pos]]
        if server_id in self._marks:
            self._marks.discard(server_id)
        else:
            self._marks.add(server_id)
        self._refresh_position(pos)
        self.post_message(self.MarksChanged(self, len(self._marks)))

    def on_resize(self, event: events.Resize) -> None:
        if self._view:
            self._move_cursor(self._cursor)

    # ---- painting -----------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._palette = None
        super().notify_style_update()

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> ServerTable:
        if repaint and not regions:  # a full repaint: the theme or the component styles may have changed
            self._palette = None
        super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
        return self

    def _get_palette(self) -> _Palette:
        palette = self._palette
        if palette is None:
            style = self.get_component_rich_style
            base = self.rich_style
            rows = (base, style("servertable--odd"), style("servertable--marked"), style("servertable--cursor"))
            states = [style(f"servertable--{g.CLASS_SUFFIX[s]}", partial=True) for s in g.STATES]
            caps = tuple(tuple(row + state for state in states) for row in rows)
            header = style("servertable--header")
            palette = self._palette = _Palette(rows, caps, header, base + states[g.CODE[State.NOT_APPLICABLE]])
        return palette

    def render_line(self, y: int) -> Strip:
        palette = self._get_palette()
        width = self._viewport()[0]
        if y < HEADER_LINES:
            return self._header_line(y, width, palette)
        pos = self._scroll_y + y - HEADER_LINES
        if pos < len(self._view):
            return self._row_line(pos, width, palette)
        base = palette.rows[_BASE]
        if pos == 0 and self.empty_message:
            text = _display(self.empty_message)
            return Strip([Segment(MARK_OFF, base), Segment(text, palette.muted)]).crop_extend(0, width, base)
        return Strip.blank(width, base)

    def _row_line(self, pos: int, width: int, palette: _Palette) -> Strip:
        data = self._data
        idx = self._view[pos]
        marked = data.ids[idx] in self._marks
        kind = _CURSOR if pos == self._cursor else _MARKED if marked else _ODD if pos & 1 else _BASE
        style = palette.rows[kind]
        caps = palette.caps[kind]
        cells = data.cells[idx]
        states = data.states[idx]
        frozen = [Segment(MARK_ON if marked else MARK_OFF, style)]
        frozen.extend([Segment(cells[c.slot], style) for c in self._frozen])
        frozen.append(Segment(SEPARATOR, style))
        visible, sx = self._visible_columns(width)
        scrolling = []
        add = scrolling.append
        for i, col in enumerate(visible):
            if col.sep and i:
                add(Segment(SEPARATOR, style))
            if col.cells:
                code = states[col.slot]
                add(Segment(col.cells[code], caps[code]))
            else:
                add(Segment(cells[col.slot], style))
        return self._join(frozen, scrolling, visible, sx, width, style)

    def _visible_columns(self, width: int) -> tuple[list[_Column], int]:
        """The unfrozen columns that overlap the viewport (the others are not even built), and the
        scroll offset to crop at. A separator at the left edge is not drawn (it would double the
        frozen columns' one): an offset inside it snaps to the column after it."""
        sx = round(self.scroll_x)
        starts = self._scroll_starts
        if not starts:
            return [], sx
        first = max(bisect_right(starts, sx) - 1, 0)
        column = self._scrolling[first]
        if sx >= column.start + column.width + 1 and first + 1 < len(starts):
            first += 1
        sx = max(sx, self._scrolling[first].start)
        last = bisect_right(starts, sx + max(width - self._frozen_width, 0))
        return self._scrolling[first:max(last, first + 1)], sx

    def _join(self, frozen: list[Segment], scrolling: list[Segment], visible: list[_Column], sx: int,
              width: int, style: Style) -> Strip:
        """One strip of exactly ``width`` cells: the frozen cells, then the scrolled ones cropped to what
        is left (cropped by hand: every cell's width is known, and one Strip per line is cheaper)."""
        fw = self._frozen_width
        if width <= fw:
            return Strip(_crop(frozen, 0, width)[0], width)
        offset = sx - visible[0].start if visible else 0
        rest, cells = _crop(scrolling, offset, width - fw)
        segments = frozen + rest
        if cells < width - fw:
            segments.append(Segment(" " * (width - fw - cells), style))
        return Strip(segments, width)

    def _header_line(self, y: int, width: int, palette: _Palette) -> Strip:
        style = palette.header
        frozen = [Segment(MARK_OFF, style)]
        frozen.extend([self._header_cell(col, y, palette) for col in self._frozen])
        frozen.append(Segment(SEPARATOR, style))
        visible, sx = self._visible_columns(width)
        scrolling = []
        for i, col in enumerate(visible):
            if col.sep and i:
                scrolling.append(Segment(SEPARATOR, style))
            group = col.spec.group
            if y or not group:
                scrolling.append(self._header_cell(col, y, palette))
            elif i == 0 or col.sep:
                # The group's label spans its columns, from its first one (or the first one in view).
                span = col.width + 1
                for following in visible[i + 1:]:
                    if following.sep:
                        break
                    span += following.width + 1
                scrolling.append(Segment(fit(group, span), style))
        return self._join(frozen, scrolling, visible, sx, width, style)

    def _header_cell(self, col: _Column, y: int, palette: _Palette) -> Segment:
        if y == 0:
            return Segment(" " * (col.width + 1), palette.header)
        spec = col.spec
        if self._sort is not None and self._sort[0] == spec.id:
            label = spec.header
            if _width(label) >= col.width:
                label = set_cell_size(label, col.width - 1)
            label += "▼" if self._sort[1] else "▲"
            return Segment(fit(label, col.width, spec.align) + " ", palette.header)
        return Segment(fit(spec.header, col.width, spec.align) + " ", palette.header)
