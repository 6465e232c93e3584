"""The details pane: one server, every property, tag and extension, and every capability with its evidence.

    pane.show_row(server, now=now)   # at once, from the table's record: properties and states, "loading …"
    pane.show_view(view, now=now)    # the ServerView from wsam_tui/depth.py: evidence, age, failed sources
    pane.show_error(server, text)    # keep what is shown, say what failed ("ARM unreachable: showing the cache")
    pane.clear("No server highlighted")

The pane is focusable and scrolls with the keys of a scroll container (up/down, pageup/pagedown,
home/end) and j/k, g/G. It renders one ``Content`` built from parts: text from ARM, the cache or the
user is never parsed as markup (a ``[@click=app.quit]`` tag value is shown, not run), and passes
``clean_text`` once more here (records are cleaned on arrival; this is the second lock). A state is a
glyph and a word as well as a colour (``$cap-on`` … from the theme), so it reads in monochrome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from wsam_tui.ages import age_text
from wsam_tui.fleet.capabilities import CATALOG
from wsam_tui.fleet.model import CapabilityState, Evidence, Extension, Kind, Server, State, clean_text

from . import glyphs as g

if TYPE_CHECKING:
    from wsam_tui.depth import ServerView

__all__ = ["DetailsPane"]

TAG_VALUE_LIMIT = 300  # a longer tag value is folded: its start, then how long it was
TEXT_LIMIT = 1000  # any other single value
LABEL_WIDTH = 16
STATE_WIDTH = 17  # "◐ not applicable" and a space
DETAIL_INDENT = 4
MIN_BODY_WIDTH = 20  # a hanging indent gives way before the text beside it gets narrower than this
KIND_NAMES = {Kind.VM: "Azure VM", Kind.ARC: "Arc server"}
STATE_STYLE = {state: "bold $cap-" + suffix for state, suffix in g.CLASS_SUFFIX.items()}
HEADING = "bold underline"
DIM = "dim"
WARNING = "bold $warning"


def _t(value: object, limit: int = TEXT_LIMIT) -> str:
    return clean_text(value, limit=limit)


def _fold(value: str, limit: int = TAG_VALUE_LIMIT) -> str:
    text = _t(value, limit=None)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%H:%M:%S UTC")


def _age(when: datetime | None, now: datetime) -> str:
    return age_text(when, now) if when is not None else "at an unknown time"


class DetailsPane(VerticalScroll, can_focus=True):
    """One server in depth. ``glyphs`` picks the state glyphs (``glyphs.UNICODE`` or ``glyphs.ASCII``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
    ]
    DEFAULT_CSS = """
    DetailsPane {
        padding: 0 1;
        & > #details-body { width: 1fr; height: auto; }
    }
    """

    def __init__(self, *, glyphs: Mapping[State, str] = g.UNICODE, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.glyphs = glyphs
        self.server: Server | None = None
        self.view: ServerView | None = None
        self.loading_line = False
        self.problem: str | None = None
        self.placeholder = "No server selected"
        self.now: datetime | None = None
        self.version = 0  # counts the changes of what is shown (the body wraps each once per width)

    def compose(self) -> ComposeResult:
        yield _Body(self)

    # ---- what to show -----------------------------------------------------------------------------

    def show_row(self, server: Server, *, loading: bool = True, now: datetime | None = None) -> None:
        """What the table's record knows, at once; with ``loading`` a visible "loading …" line."""
        if self.is_mounted and (self.server is None or server.id != self.server.id):
            self.scroll_home(animate=False)
        self.server, self.view, self.loading_line, self.problem, self.now = server, None, loading, None, now
        self._update()

    def show_view(self, view: ServerView, *, now: datetime | None = None) -> None:
        """The server in depth: evidence, where it came from and how old it is, the sources that failed."""
        if self.is_mounted and (self.server is None or view.server.id != self.server.id):
            self.scroll_home(animate=False)
        self.server, self.view, self.loading_line, self.problem, self.now = view.server, view, False, None, now
        self._update()

    def show_error(self, server: Server | None, message: str) -> None:
        """Keep what is shown (or show ``server``'s record when nothing of it is) and say what failed."""
        if server is not None and (self.server is None or self.server.id != server.id):
            self.server, self.view = server, None
        self.loading_line, self.problem = False, _t(message)
        self._update()

    def tick(self, now: datetime) -> None:
        """Time passed: the ages shown advance (redrawn only when their text changes)."""
        if self.server is None:
            return
        before = self.text
        self.now = now
        if self.text != before:
            self._update()

    def clear(self, message: str = "No server selected") -> None:
        self.server, self.view, self.loading_line, self.problem, self.placeholder = None, None, False, None, _t(message)
        self._update()

    @property
    def text(self) -> str:
        """What the pane shows, as plain text with one line per paragraph (for tests and for copying)."""
        return "\n".join(p.prefix.plain + p.body.plain for p in self.paragraphs())

    def render_body(self, width: int = 80) -> Content:
        """The paragraphs wrapped to ``width`` cells, each continuation line under its paragraph's indent."""
        lines: list[Content] = []
        for p in self.paragraphs():
            indent = p.prefix.cell_length if p.hang is None else p.hang
            if width - indent < MIN_BODY_WIDTH:  # too narrow to hang that deep: continue further left
                indent = max(width - MIN_BODY_WIDTH, 0)
            body_width = max(width - max(indent, p.prefix.cell_length), 1)  # no line wider than the pane
            wrapped = p.body.wrap(body_width) if p.body.cell_length else [p.body]
            lines.append(p.prefix + wrapped[0])
            lines.extend(Content(" " * indent) + line for line in wrapped[1:])
        return Content("\n").join(lines)

    def _update(self) -> None:
        self.version += 1
        if self.is_mounted:
            self.query_one(_Body).refresh(layout=True)

    # ---- rendering ----------------------------------------------------------------------------------

    def paragraphs(self) -> list[_Paragraph]:
        out: list[_Paragraph] = []
        if self.problem:
            out.append(_P(Content.styled("! ", WARNING), Content.styled(self.problem, WARNING)))
        server = self.server
        if server is None:
            out.append(_P(body=Content.styled(self.placeholder, DIM)))
            return out
        now = self.now or datetime.now(UTC)
        view = self.view
        out.append(_P(body=Content.styled(_t(server.name) or "(no name)", "bold")))
        out.append(_P(body=Content(f"{KIND_NAMES.get(server.kind, server.kind)} · {_t(server.state)} · {_t(server.location)}")))
        out.append(_P(body=self._provenance(server, view, now)))
        if self.loading_line:
            out.append(_P(body=Content.styled("loading … (evidence and fresh state from ARM)", WARNING)))
        if view is not None and view.errors:
            # From the cache these are the last refresh's failures: the rows shown, if any, are older.
            out += _heading("Could not read" if view.source == "arm" else "The last refresh could not read")
            out.extend(_P(Content("  "), Content.assemble((f"{source.value}: ", "bold"), _t(reason)), hang=4)
                       for source, reason in sorted(view.errors.items()))
        out += self._properties(server)
        out += self._tags(server)
        out += self._extensions(server.extensions)
        out += self._capabilities(server, now, with_evidence=view is not None)
        return out

    def _provenance(self, server: Server, view: ServerView | None, now: datetime) -> Content:
        if view is None:
            when = f", fetched {_age(server.fetched_at, now)}" if server.fetched_at else ""
            return Content.styled(f"from the table{when}; evidence not loaded", DIM)
        if view.source == "arm":
            when = f"as of {_utc(view.as_of)}" if view.as_of else "as of an unknown time"
            return Content.assemble((when, "bold"), " ", "— fresh from ARM")  # a span's leading space is lost when drawn
        if view.as_of is None:
            return Content.assemble(("from the cache", "bold"), " (fetch time unknown)")
        old = age_text(view.as_of, now).removesuffix(" ago")
        line = Content.assemble((f"as of {_utc(view.as_of)}", "bold"), " ", f"— from the cache, {old} old")
        if view.updated is not None:  # what an action wrote since is newer than that: say which, and when
            when, by = view.updated
            line += Content.assemble("; ", (f"updated by {_t(by) or 'an action'} at {_utc(when)}", "bold"),
                                     f" ({_age(when, now)})")
        return line

    def _properties(self, s: Server) -> list[_Paragraph]:
        state_label = "Power state" if s.kind is Kind.VM else "Connection"
        agent_label = "VM agent" if s.kind is Kind.VM else "Arc agent"
        os_text = " ".join(p for p in (_t(s.os_name), _t(s.os_version)) if p)
        fields = [("Name", _t(s.name)), ("Kind", KIND_NAMES.get(s.kind, str(s.kind))), ("Subscription", _t(s.subscription_id)),
                  ("Tenant", _t(s.tenant_id)), ("Resource group", _t(s.resource_group)), ("Region", _t(s.location)),
                  ("OS", os_text), (state_label, _t(s.state)), (agent_label, _t(s.agent_version)),
                  ("Identity", _t(s.identity_type)), ("Resource id", _t(s.id))]
        return _heading("Properties") + [_P(Content.styled("  " + label.ljust(LABEL_WIDTH), DIM), Content(value or "—"))
                                         for label, value in fields]

    def _tags(self, s: Server) -> list[_Paragraph]:
        out = _heading(f"Tags ({len(s.tags)})")
        if not s.tags:
            out.append(_P(Content("  "), Content.styled("none", DIM)))
        for key in sorted(s.tags, key=str.lower):
            out.append(_P(Content("  "), Content.assemble((_fold(key, 120), "bold"), " = ", _fold(s.tags[key])), hang=4))
        return out

    def _extensions(self, extensions: Iterable[Extension]) -> list[_Paragraph]:
        exts = sorted(extensions, key=lambda e: (e.handler.lower(), e.name.lower()))
        out = _heading(f"Extensions ({len(exts)})")
        if not exts:
            out.append(_P(Content("  "), Content.styled("none", DIM)))
        for e in exts:
            state = _t(e.provisioning_state) or "state unknown"
            failed = state.lower() == "failed"
            out.append(_P(Content("  "), Content.assemble(
                (_t(e.handler), "bold"), f" {_t(e.version) or '(no version)'}  ", (state, WARNING if failed else ""),
                "  auto-upgrade" if e.auto_upgrade else "  no auto-upgrade"), hang=4))
            if e.name and e.name != e.type:
                out.append(_P(Content.styled("    name ", DIM), Content(_t(e.name))))
            if e.status_message:
                out.append(_P(Content.styled("    status ", DIM), Content(_t(e.status_message))))
        return out

    def _capabilities(self, s: Server, now: datetime, *, with_evidence: bool) -> list[_Paragraph]:
        out = _heading("Capabilities")
        group = None
        for cap in CATALOG:
            cell = s.capabilities.get(cap.id)
            if cell is None:
                continue
            if cap.group is not group:
                group = cap.group
                out.append(_P(body=Content.styled(f" {group.value}", "bold")))
            word = g.LABEL.get(cell.state, str(cell.state))
            state = Content.styled(f"{g.glyph(cell.state, self.glyphs)} {word}".ljust(STATE_WIDTH),
                                   STATE_STYLE.get(cell.state, ""))
            out.append(_P(Content("  ") + state, Content.assemble((cap.label, "bold"), " — ", _t(cell.summary))))
            out += self._cell_details(cell, now, with_evidence=with_evidence)
        return out

    def _cell_details(self, cell: CapabilityState, now: datetime, *, with_evidence: bool) -> list[_Paragraph]:
        pad = " " * DETAIL_INDENT
        out = []
        if cell.flags:
            out.append(_P(Content.styled(pad + "flags ", DIM), Content(", ".join(_t(f) for f in cell.flags))))
        if cell.unknown_reason:
            out.append(_P(Content.styled(pad + "why unknown ", DIM), Content(_t(cell.unknown_reason))))
        if cell.stale_reason:
            out.append(_P(Content.styled(pad + "why stale ", DIM), Content(_t(cell.stale_reason))))
        if with_evidence and cell.state is not State.NOT_APPLICABLE:
            if not cell.evidence:
                out.append(_P(Content(pad), Content.styled("no evidence documents", DIM)))
            for ev in cell.evidence:
                out += _evidence(pad, ev, now, self.server.id if self.server else "")
        return out


class _Body(Widget):
    """The pane's text, wrapped when it is laid out and drawn, to the width it has then. (Wrapped when the
    text arrived, it took the width of that moment: a pane being opened has none yet, and a scrollbar that
    appears later narrows it. The text arrives from a thread at any point of that, so the hanging indents
    held or not depending on the order; the terminal then wrapped the overlong lines again, from column 0.)"""

    DEFAULT_CSS = """
    _Body { width: 1fr; height: auto; }
    """

    def __init__(self, pane: DetailsPane) -> None:
        super().__init__(id="details-body")
        self.pane = pane
        self._wrapped: tuple[int, int, Content] | None = None  # (the pane's version, width, the text)

    def wrapped(self, width: int) -> Content:
        if self._wrapped is None or self._wrapped[:2] != (self.pane.version, width):
            self._wrapped = (self.pane.version, width, self.pane.render_body(width))
        return self._wrapped[2]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.wrapped(width).plain.count("\n") + 1 if width else 0

    def render(self) -> Content:
        return self.wrapped(self.size.width or 80)


EMPTY = Content("")


@dataclass(frozen=True, slots=True)
class _Paragraph:
    """One logical line: ``prefix`` on its first screen line, continuation lines indented by ``hang``
    (by default the prefix's width), so that wrapped text stays under its heading."""

    prefix: Content = EMPTY
    body: Content = EMPTY
    hang: int | None = None


_P = _Paragraph


def _heading(title: str) -> list[_Paragraph]:
    return [_P(), _P(body=Content.styled(title, HEADING))]


def _evidence(pad: str, ev: Evidence, now: datetime, server_id: str) -> list[_Paragraph]:
    document = _t(ev.document_id)
    if not document:
        document = "(no document: the absence is the evidence)"
    elif server_id and document.lower().startswith(server_id.lower()):
        document = "this machine" + document[len(server_id):]  # its own id, or a child's: the rest says which
    return [
        _P(Content.styled(pad + "· ", DIM), Content.assemble(
            (ev.source.value, "italic"), " ", _t(ev.field), " = ", (_t(ev.value), "bold"), (f"  {_age(ev.fetched_at, now)}", DIM))),
        _P(Content(pad + "  "), Content.styled(document, DIM)),
    ]
