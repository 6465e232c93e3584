"""The console: one screen with the header, the server table and capability matrix, the details pane,
the `/` filter bar and the `:` command line.

Data flow: the session (wsam_tui/session.py) answers; this module only renders. A snapshot is loaded
from the store in a thread worker (index and display strings prepared there), then handed to the table
in one call; a refresh runs on the session's own ARM loop and reports progress through messages, and
when it ends the snapshot is loaded again. Marks and the cursor follow server ids, so they survive
filter, sort and refresh.

Every binding has an id (the action's name), so ``[keys]`` in the config file can rebind it; ``?``
lists them. Defaults avoid what tmux and terminals swallow: no ctrl+b (tmux prefix), ctrl+s/ctrl+q
(XON/XOFF flow control), ctrl+z (suspend), ctrl+space (sent as NUL or not at all), alt+… (an ESC
prefix that arrives late over SSH).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, Static, TextArea
from textual.worker import Worker, WorkerState

from .. import __version__
from ..ages import age_text
from ..arm.common import ArmHttpError, TransportEvent
from ..config import Settings, config_dir
from ..fleet.capabilities import CATALOG
from ..fleet.model import Server, Source, clean_text
from ..fleet.query import COLUMNS, FleetIndex, Query, QueryError, parse_query, resolve_capability
from ..session import ConnectFailed, FleetSession
from . import glyphs as g
from .faults import FaultReporter, KeepRunning
from .inputs import BarInput
from .rowcache import load_rows, save_rows
from .table import ColumnSpec, ServerTable, TableData, default_columns
from .themes import BUNDLED, DEFAULT_THEME, VARIABLE_DEFAULTS, load_themes

if TYPE_CHECKING:
    from ..inventory import Snapshot
    from .actions import ConsoleActions, JobEnded, JobUpdate

# ---- messages from the session's thread (post_message is thread-safe) -----------------------------


class RefreshProgress(Message):
    def __init__(self, source: Source, done: int, total: int) -> None:
        super().__init__()
        self.source, self.done, self.total = source, done, total


class KeyDone(Message):
    """Sent behind a key to the widget the key went to, it bubbles up the same way: when the app has it, that
    key has been applied and the next one may go (see WsamApp._next_keys). Also ends a hold (_hold_keys)."""

    def __init__(self, wait: int) -> None:
        super().__init__()
        self.wait = wait  # which wait it ends: a late one must not end a later wait


class TransportNotice(Message):
    def __init__(self, event: TransportEvent) -> None:
        super().__init__()
        self.event = event


# ---- small widgets ----------------------------------------------------------------------------


class HeaderBar(Static):
    """One line: where the data comes from, scope, online state, data age, read-only, counts."""

    DEFAULT_CSS = """
    HeaderBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """


class StatusLine(Static):
    """What is happening now: refresh progress per source, throttling waits, the last problem."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $surface; color: $text-muted; padding: 0 1; }
    StatusLine.-problem { color: $warning; }
    """


class FilterBar(Horizontal):
    DEFAULT_CSS = """
    FilterBar { height: 1; display: none; background: $surface; }
    FilterBar.-open { display: block; }
    FilterBar > Label { width: 2; color: $accent; }
    FilterBar > Input { width: 1fr; height: 1; border: none; padding: 0; background: $surface; }
    FilterBar > Input:focus { border: none; }  /* Input:focus draws a tall border: on one line it hides the text */
    FilterBar > #filter-error { width: auto; max-width: 60%; color: $error; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def _typed(self, text: str) -> None:
        self.app._filter_typed(text)  # type: ignore[attr-defined]  (the bar lives in WsamApp only)

    def compose(self) -> ComposeResult:
        yield Label("/")
        yield BarInput(id="filter-input", on_value=self._typed, select_on_focus=False,
                       placeholder="filter: words, kind:arc, missing:monitor, tag:env=prod … (? help)")
        yield Static(Content(""), id="filter-error")


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "dismiss(False)", "No"),
        Binding("y", "dismiss(True)", "Yes"),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 64; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    ConfirmScreen Horizontal { height: auto; margin-top: 1; }
    ConfirmScreen Button { margin-right: 2; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(self.question))
            with Horizontal():
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


@dataclass(frozen=True)
class ActionInfo:
    """One action of the console: its id (the binding id, rebindable), default keys, title, help."""

    id: str
    keys: str
    title: str
    help: str
    show: bool = True  # in the footer


ACTIONS: tuple[ActionInfo, ...] = (
    # In footer order: what a newcomer needs first (a 100-column footer shows the first six or so).
    ActionInfo("filter", "slash", "Filter", "Filter the servers (/): free text and fields, see ? for the language"),
    ActionInfo("command", "colon", "Command", "Command mode (:): subs, tenant, theme, export, kql, sort, gaps …"),
    ActionInfo("help", "question_mark", "Help", "Every binding with its action id, and the filter language"),
    ActionInfo("act", "o", "Act", "Act on the marked servers (or the highlighted one): plan, confirm, run"),
    ActionInfo("jobs", "J", "Jobs", "The jobs pane: progress per target, outputs, cancel, retry failed, resume"),
    ActionInfo("quit", "q", "Quit", "Quit (asks first when work is still running)"),
    ActionInfo("details", "d", "Details", "Show or hide the details pane of the highlighted server"),
    ActionInfo("mark_all", "a", "Mark shown", "Mark every server shown by the filter"),
    ActionInfo("clear_marks", "u", "Unmark all", "Clear every mark (shown or not)"),
    ActionInfo("gaps", "x", "Gaps", "Gap view: only servers missing a capability (toggle)"),
    ActionInfo("refresh", "r", "Refresh", "Refresh the fleet from Azure (Resource Graph; ARM where it is refused)"),
    ActionInfo("sort_next", "s", "Sort", "Sort by the next column (S reverses)", show=False),
    ActionInfo("sort_reverse", "S", "Reverse", "Reverse the sort order", show=False),
    ActionInfo("focus_next_pane", "tab", "Next pane", "Move between the table and the details pane", show=False),
    ActionInfo("back", "escape", "Back", "Close the details pane, clear a search prompt", show=False),
)

KEY_NAMES = {"slash": "/", "colon": ":", "question_mark": "?", "space": "space", "escape": "esc"}


KEY_SETTLE_S = 0.005  # between looks at whether a key's effects have settled (_key_settled)
KEY_SETTLE_MAX_S = 1.0  # the longest the next key waits for them
AGE_TICK_S = 1.0  # ages on screen are renewed this often (a header line; the details pane only if open)
PROMPTS = frozenset({"filter", "command"})  # actions that open a bar to type into
APP_WIDE = frozenset({"help", "jobs", "quit"})  # actions that make sense in front of any screen
FLEET_ACTIONS = frozenset(a.id for a in ACTIONS) - APP_WIDE  # they act on the table and the panes around it


def _binding(action: ActionInfo) -> Binding:
    """The binding of one console action; its id is the action's, so ``[keys]`` in the config rebinds it."""
    return Binding(action.keys, f"app.{action.id}", action.title, show=action.show, id=action.id,
                   tooltip=action.help, priority=action.id in PROMPTS)


class FleetScreen(KeepRunning, Screen):
    """The console's main screen: header, server table, details pane, bars. Every console action is bound
    here, not on the app, so that none of them acts on the table while another screen is in front (in the
    jobs pane `a` must not mark every server behind it). `?`, `J` and `q` are bound on the app as well, so
    they work from any screen; here the screen's own bindings come first and keep the footer's order."""

    BINDINGS: ClassVar[list[BindingType]] = [_binding(a) for a in ACTIONS]


def _give_back_memory() -> None:
    """Return the heap freed by a load to the system (glibc keeps it otherwise: RSS stays at the peak)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def short_os(s: Server) -> str:
    """'2022 Datacenter Azure Edition 20348': every row is Windows Server, so the table shows what differs
    (the full name and version are in the details pane and the filter reads both)."""
    name = s.os_name[len("Windows Server "):] if s.os_name.startswith("Windows Server ") else s.os_name
    parts = s.os_version.split(".")
    build = parts[2] if len(parts) >= 3 and s.os_version.startswith("10.") else s.os_version
    return f"{name} {build}".strip()


def console_columns(subscription_names: dict[str, str], now: datetime | None = None) -> list[ColumnSpec]:
    """The table's columns in the console's order: who (name, kind, state, coverage), then the matrix,
    then where and what (subscription, group, region, OS, agent, age) — so that the matrix is on screen
    from 100 columns up, and h/l scroll to the rest."""
    columns = {c.id: c for c in default_columns(subscription_names, now=now)}
    columns["os"] = ColumnSpec("os", "OS", short_os, max_width=30)
    columns["subscription"] = replace(columns["subscription"], max_width=20)
    columns["resourceGroup"] = replace(columns["resourceGroup"], max_width=20)
    first = ["name", "kind", "state", "coverage"]
    rest = ["subscription", "resourceGroup", "location", "os", "agentVersion", "age"]
    caps = [c.id for c in CATALOG]
    return [columns[c] for c in (*first, *caps, *rest)]


def _plain(text: str) -> Content:
    return Content(clean_text(text))


class WsamApp(KeepRunning, App[None]):
    """The fleet console."""

    TITLE = "wsam-tui"
    CSS = """
    Screen { layout: vertical; }
    #main { height: 1fr; }
    #servers { width: 1fr; height: 1fr; }
    /* at most 90 columns: on a wide terminal the table keeps the room (every column at 300) */
    #details { width: 45%; min-width: 40; max-width: 90; height: 1fr; display: none; border-left: solid $panel-lighten-1; }
    #details.-open { display: block; }
    #command-line { display: none; height: 1; }  /* in the flow above the footer: docked, the footer covered it */
    #command-line.-open { display: block; }
    """
    # The console's actions are bound on FleetScreen; `/` and `:` are priority bindings there: they are seen
    # before the keys queued behind them go to the table (see _type_into); check_action hands them back to an
    # input. Only the actions that make sense in front of any screen are bound here too.
    BINDINGS: ClassVar[list[BindingType]] = [_binding(a) for a in ACTIONS if a.id in APP_WIDE]
    COMMAND_PALETTE_BINDING = "ctrl+p"

    shown = reactive(0)
    marked = reactive(0)
    refreshing = reactive(False)

    def __init__(self, session: FleetSession, settings: Settings | None = None, *, theme: str | None = None,
                 now: Callable[[], datetime] | None = None, refresh_on_start: bool = True,
                 user_themes: Path | None = None) -> None:
        super().__init__()
        self.session = session
        self.settings = settings or Settings()
        self.clock = now or (lambda: datetime.now(UTC))
        self.refresh_on_start = refresh_on_start
        self.snapshot: Snapshot | None = None
        self.servers: Sequence[Server] = ()
        self.by_id: dict[str, Server] = {}
        self.index: FleetIndex | None = None
        self.filter_query: Query | None = None  # not `query`: that is Textual's DOM query method
        self.query_text = ""
        self.gap_view = False
        self.connection_problem: str | None = None
        self.progress: dict[Source, tuple[int, int]] = {}
        self.last_refresh: datetime | None = None
        self.subscription_names: dict[str, str] = {}
        self.scope_subscriptions: list[dict] = []
        self.data_oldest: datetime | None = None
        self.total = 0
        self.loading = False
        self._typing_into: Widget | None = None
        self._keys_waiting: deque[events.Key] = deque()  # typed, not yet handed on (see _next_keys)
        self._key_on_way: int | None = None  # the KeyDone awaited for the key handed on last
        self._key_screen: Screen | None = None  # the screen that key went to
        self._key_seen: tuple[int, ...] = ()  # the screens and focus at the last look (_key_settled)
        self._key_deadline = 0.0  # when the next key goes on even if the last one has not settled
        self._bar_hold: int | None = None  # the KeyDone awaited after enter/escape in a bar (see _hold_keys)
        self._waits = 0  # numbers those waits
        self._header_text = ""
        self._status_text = ""
        self._idle_shown: str | None = None  # the idle status last shown (_tick_ages renews it)
        self._filter_error = False
        self._details_for: str | None = None
        self._details_timer = None
        themes, problems = load_themes(BUNDLED, user_themes or config_dir() / "themes")
        self._theme_problems = problems
        for t in themes:
            self.register_theme(t)
        wanted = theme or self.settings.theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self._theme_problems.append(f"theme {wanted!r} not found; using {DEFAULT_THEME}")
            wanted = DEFAULT_THEME
        self._initial_theme = wanted
        # The last session's rows, read before the app starts so that its first frame shows them (reading
        # them in a worker while the app mounts made both slower: they share one interpreter).
        self._restored = load_rows(session.inventory.store.directory,
                                   console_columns({}, now=self.clock()), now=self.clock())
        self._ops: ConsoleActions | None = None
        self.faults = FaultReporter()
        self._started = False  # the console is up: from now on a fault is reported, not fatal

    def _handle_exception(self, error: Exception) -> None:
        """Textual's one hook for an exception nothing caught (handlers, timers, workers, drawing): it ends the
        app. Once the console is up it is shown and logged instead, and the console goes on (ui/faults.py)."""
        if not self._started:
            super()._handle_exception(error)
            return
        self.report_fault(error)

    def report_fault(self, error: BaseException) -> None:
        if self.is_headless and self._exception is None and isinstance(error, Exception):
            self._exception = error  # a test run still fails when it ends: tests must not pass over a fault
        self.faults.report(self, error)

    # ---- layout -------------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        return FleetScreen(id="_default")

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        from .command import CommandLine
        from .details import DetailsPane

        yield HeaderBar(id="header")
        with Horizontal(id="main"):
            yield ServerTable(id="servers", empty_message="Loading the fleet from the local cache …")
            yield DetailsPane(id="details")
        yield StatusLine(id="status")
        yield FilterBar(id="filter")
        yield CommandLine(self.command_specs(), id="command-line")
        yield Footer()

    def on_mount(self) -> None:
        self.theme = self._initial_theme
        if self.settings.keys:
            self.set_keymap({k: v for k, v in self.settings.keys.items()})
        for problem in [*self.settings.problems, *self._theme_problems, *self.session.info.notices]:
            self.notify(clean_text(problem), severity="warning", markup=False, timeout=10)
        self.session.on_event = lambda event: self.post_message(TransportNotice(event))
        self.screen_change_signal.subscribe(self, self._screen_changed)
        self.query_one(ServerTable).focus()
        self._render_header()
        self._set_status("Loading the local cache …")
        then_refresh = self.refresh_on_start and not self.session.offline
        if self._restored is not None:  # read before the app started: the first frame has the rows
            self._apply_rows(*self._restored)
            # The derivation (CPU for seconds at 50k) waits until that frame is out.
            self.call_after_refresh(self.load_snapshot, then_refresh)
        else:
            self.load_snapshot(then_refresh)
        self.call_after_refresh(lambda: self.ops.start())
        self.set_interval(AGE_TICK_S, self._tick_ages)
        self._started = True

    def _tick_ages(self) -> None:
        """Every age on screen advances while the console is idle (each redrawn only when its text changes)."""
        from .details import DetailsPane

        status, details = self.query(StatusLine), self.query(DetailsPane)
        if not status or not details:  # the console is closing: its widgets are gone (the timer may still fire)
            return
        self._render_header()
        if self._status_text == self._idle_shown:  # the idle status is shown: it may carry the data's age
            self._set_status(self._idle_status(), problem=status.first().has_class("-problem"))
        if details.first().has_class("-open"):
            details.first().tick(self.clock())

    @property
    def ops(self) -> ConsoleActions:
        """Actions and jobs (ui/actions.py, ui/jobs.py); imported at first use, after the first frame."""
        if self._ops is None:
            from .actions import ConsoleActions

            self._ops = ConsoleActions(self)
        return self._ops

    @property
    def table(self) -> ServerTable:
        return self.query_one("#servers", ServerTable)

    # ---- header and status ----------------------------------------------------------------------

    def _scope_text(self) -> str:
        subs = self.scope_subscriptions
        tenants = {str(s.get("tenantId") or "") for s in subs} - {""}
        return f"{len(tenants)} tenant{'s' * (len(tenants) != 1)} · {len(subs)} subscription{'s' * (len(subs) != 1)}"

    def _state_text(self) -> tuple[str, str]:
        if self.session.offline:
            return "OFFLINE (cache only)", "$warning"
        if self.connection_problem:
            return "OFFLINE: ARM unreachable (r: retry)", "$error"
        if self.refreshing:
            return "refreshing", "$accent"
        return "online", "$success"

    def _render_header(self) -> None:
        state, colour = self._state_text()
        oldest = self.data_oldest
        age = f"data {age_text(oldest, self.clock())}" if oldest else "no data yet"
        # Most telling first: on a narrow terminal the end of the line is what gets cut.
        parts: list[Content] = [
            Content.styled("wsam-tui", "bold"),
            Content.styled(state, colour),
            Content(f"{self.shown:,} shown · {self.marked:,} marked · {self.total:,} total"),
            Content(age),
        ]
        if self.session.info.readonly:
            parts.append(Content.styled("READ-ONLY", "bold $warning"))
        filter_text = " ".join(t for t in (self.query_text, "(gaps)" if self.gap_view else "") if t)
        if filter_text:
            parts.append(Content("filter: ") + _plain(filter_text[:60]))
        parts += [_plain(self.session.info.source), Content(self._scope_text())]
        header = Content(" │ ").join(parts)
        if header.plain != self._header_text:  # one line of fixed height: no layout pass (a keystroke at 50k)
            self._header_text = header.plain
            self.query_one(HeaderBar).update(header, layout=False)

    def _set_status(self, text: str, *, problem: bool = False) -> None:
        self._status_text = text
        status = self.query_one(StatusLine)
        status.update(_plain(text), layout=False)
        status.set_class(problem, "-problem")

    def watch_shown(self) -> None:
        self._render_header()

    def watch_marked(self) -> None:
        self._render_header()

    def watch_refreshing(self) -> None:
        self._render_header()
        self.refresh_bindings()

    # ---- loading ------------------------------------------------------------------------------

    def load_snapshot(self, then_refresh: bool = False) -> None:
        self.loading = True
        self._load_worker(then_refresh)

    @property
    def busy(self) -> bool:
        """A refresh or a load is running (tests wait for this to clear)."""
        return self.refreshing or self.loading

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "load" and event.state is WorkerState.ERROR:
            event.prevent_default()  # said here, not as an unexpected fault (KeepRunning)
            self.loading = False
            error = event.worker.error
            if self.index is None:  # nothing was shown yet: the table says why instead of "Loading …"
                self.table.empty_message = clean_text(f"Cannot read the local cache: {type(error).__name__}: {error}")
                self.table.refresh()
            self._set_status(f"Cannot read the local cache: {type(error).__name__}: {error}", problem=True)
            self.notify(clean_text(f"{type(error).__name__}: {error}"), title="Cannot read the local cache",
                        severity="error", markup=False, timeout=15)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_worker(self, then_refresh: bool = False) -> None:
        """The store's snapshot, derived in this thread; at start, the rows saved by the last session are
        painted first (milliseconds), while the snapshot is derived behind them (seconds at 50k)."""
        directory = self.session.inventory.store.directory
        restored, self._restored = self._restored, None
        _give_back_memory()  # the saved rows' file, parsed and split, is garbage now
        snapshot = self.session.load()
        names = {str(s.get("subscriptionId", "")).lower(): clean_text(s.get("displayName") or s.get("subscriptionId"))
                 for s in snapshot.subscriptions}
        index = FleetIndex(snapshot.servers, names)
        sort_key, descending = (self.index.sort_key, self.index.descending) if self.index else ("name", False)
        if (sort_key, descending) != ("name", False):
            index.sort(sort_key, descending)
        fingerprint = self._fingerprint(snapshot)
        server_ids = [s.id for s in snapshot.servers]
        reused = (restored is not None and restored[1].get("fingerprint") == fingerprint
                  and restored[0].ids == server_ids)
        if reused:  # the store has not changed since these rows were saved: keep them (no second copy)
            data = restored[0]
            # The same ids, as the snapshot's own strings: the file's copies go (10 MB at 50,000 servers).
            data.index_of = {sid: i for i, sid in enumerate(server_ids)}
            data.ids = server_ids
        else:
            data = TableData.build(snapshot.servers, console_columns(names, now=self.clock()))
        restored = None
        self.call_from_thread(self._apply_snapshot, snapshot, names, index, data, then_refresh)
        _give_back_memory()
        if not reused:
            meta = {"subscriptions": snapshot.subscriptions, "names": names, "fingerprint": fingerprint,
                    "oldest": snapshot.oldest.isoformat() if snapshot.oldest else None}
            try:
                save_rows(directory, data, snapshot.servers, meta)
            except OSError as e:  # only a faster next start is lost
                self.call_from_thread(self.notify, clean_text(f"Cannot save the table rows for a fast start: {e}"),
                                      severity="warning", markup=False)

    def _fingerprint(self, snapshot: Snapshot) -> str:
        """What the saved rows were derived from: the newest fetch, the count, the settings detectors read,
        and the day (a detector may call an assessment stale from one day to the next)."""
        inv = self.session.inventory
        newest = snapshot.newest.isoformat() if snapshot.newest else ""
        return (f"{newest}|{len(snapshot.servers)}|{','.join(inv.required_tags)}|{inv.stale_after_days}|"
                f"{self.clock().date().isoformat()}|{__version__}")

    def _apply_rows(self, data: TableData, meta: dict) -> None:
        """The last session's rows, until the snapshot is derived (filter and details wait for it)."""
        if self.index is not None:
            return
        subs = [s for s in meta.get("subscriptions") or [] if isinstance(s, dict)]
        names = meta.get("names")
        if isinstance(names, dict):
            self.subscription_names = {str(k): clean_text(v) for k, v in names.items()}
        self.scope_subscriptions = subs
        try:
            self.data_oldest = datetime.fromisoformat(meta["oldest"]) if meta.get("oldest") else None
        except (TypeError, ValueError):
            self.data_oldest = None
        self.total = len(data.ids)
        self.table.set_prepared(data)
        self.shown = self.table.row_count
        self._set_status(f"{self.total:,} servers from the last session; indexing …")
        self._render_header()

    def _apply_snapshot(self, snapshot: Snapshot, names: dict[str, str], index: FleetIndex, data: TableData,
                        then_refresh: bool) -> None:
        self.snapshot, self.subscription_names, self.index = snapshot, names, index
        self.loading = False
        self.servers = snapshot.servers
        self.total = len(snapshot.servers)
        self.scope_subscriptions = list(snapshot.subscriptions)
        self.data_oldest = snapshot.oldest
        self.by_id = {s.id: s for s in snapshot.servers}
        # A query typed against the old snapshot may name subscriptions by display name: parse it again.
        self._set_query(self.query_text, quiet=True)
        table = self.table
        table.empty_message = ("No servers match the filter" if snapshot.servers else
                               "The cache is empty: refreshing from Azure …" if not self.session.offline else
                               "The cache is empty. Run once online (wsam-tui, or wsam-tui --demo) to fill it.")
        table.set_prepared(data, view=self._filtered())
        table.set_sort_indicator(index.sort_key if index.sort_key != "name" or index.descending else None,
                                 index.descending)
        self.shown = table.row_count
        self.marked = len(table.marks)
        for notice in snapshot.notices:
            self.notify(clean_text(notice), severity="warning", markup=False, timeout=15)
        gc.freeze()  # tens of thousands of long-lived records: keep the cyclic collector off them (no pauses)
        self._render_header()
        if not self.refreshing:
            self._set_status(self._idle_status())
        self._follow_cursor()
        if then_refresh:
            self.action_refresh()

    def _idle_status(self) -> str:
        self._idle_shown = self._idle_text()
        return self._idle_shown

    def _idle_text(self) -> str:
        if self.snapshot is None:
            return ""
        if self.session.offline:
            when = self.snapshot.oldest
            stamp = when.strftime("%Y-%m-%d %H:%M UTC") if when else "never"
            return f"Offline: the last known state, as of {stamp} ({age_text(when, self.clock())})."
        if self.connection_problem:
            return f"{self.connection_problem} — showing the cache; r retries."
        done = f"refreshed {self.last_refresh.strftime('%H:%M:%S')} UTC" if self.last_refresh else "from the cache"
        return f"{len(self.servers):,} servers, {done}.  / filter · : command · space mark · enter details · ? help"

    # ---- refresh ------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if self.session.offline:
            self.notify("Offline mode (--offline): the console shows the cache and does not connect.",
                        severity="warning", markup=False)
            return
        if self.refreshing:
            self.notify("A refresh is already running.", markup=False, timeout=3)
            return
        self.refreshing = True
        self.progress.clear()
        self._set_status("Refreshing: connecting …")
        self.run_refresh()

    @work(exclusive=True, group="refresh", exit_on_error=False)
    async def run_refresh(self) -> None:
        def progress(source: Source, done: int, total: int) -> None:
            self.post_message(RefreshProgress(source, done, total))

        try:
            report = await self.session.refresh(progress)
        except ConnectFailed as e:
            self.connection_problem = clean_text(str(e), limit=300)
            self.refreshing = False
            self._set_status(self._idle_status(), problem=True)
            self.notify(self.connection_problem, title="Cannot reach Azure", severity="error", markup=False,
                        timeout=15)
            self._render_header()
            return
        except Exception as e:  # an unexpected failure must not take the console down
            self.refreshing = False
            self._set_status(f"Refresh failed: {type(e).__name__}: {e}", problem=True)
            self.notify(clean_text(f"{type(e).__name__}: {e}"), title="Refresh failed", severity="error",
                        markup=False, timeout=15)
            return
        self.connection_problem = None
        self.last_refresh = self.clock()
        self.refreshing = False
        self._set_status(f"Refreshed in {report.seconds:.1f} s; deriving the matrix …")
        for sub, source, message in report.failures[:5]:
            name = self.subscription_names.get(sub.lower(), sub)
            self.notify(clean_text(f"{name}: {source}: {message}"), title="Part of the fleet is unknown",
                        severity="warning", markup=False, timeout=15)
        if len(report.failures) > 5:
            self.notify(f"… and {len(report.failures) - 5} more failed sources (their cells read unknown).",
                        severity="warning", markup=False, timeout=15)
        for sub in report.through_arm:
            name = self.subscription_names.get(sub.lower(), sub)
            self.notify(clean_text(f"{name}: Resource Graph refused it; read through ARM instead."),
                        severity="information", markup=False)
        self.load_snapshot()

    def on_refresh_progress(self, message: RefreshProgress) -> None:
        self.progress[message.source] = (message.done, message.total)
        parts = [f"{s.value} {d:,}/{t:,}" if t else f"{s.value} {d:,}" for s, (d, t) in self.progress.items()]
        self._set_status("Refreshing: " + " · ".join(parts))

    def on_transport_notice(self, message: TransportNotice) -> None:
        event = message.event
        self._set_status(event.message, problem=event.kind in ("throttled", "error"))
        if event.kind == "error":
            self.notify(clean_text(event.message), severity="error", markup=False)

    # ---- filter -------------------------------------------------------------------------------

    def _filtered(self) -> list[int]:
        if self.index is None:
            return []
        view = self.index.filter(self.filter_query)
        if self.gap_view:
            gaps = set(self.index.filter(self.index.gaps()))
            view = [i for i in view if i in gaps]
        return view

    def _set_query(self, text: str, *, quiet: bool = False) -> bool:
        """Parse ``text`` as the filter; on an error keep the last good filter and say why in the bar."""
        error = self.query_one("#filter-error", Static)
        try:
            self.filter_query = parse_query(text, subscriptions=self.subscription_names) if text.strip() else None
        except QueryError as e:
            if not quiet:
                self._show_filter_error(error, _plain(str(e)))  # the message names the column
            return False
        self.query_text = text.strip()
        if self._filter_error:  # blank, its width kept while the bar is open: a new width is a layout
            error.update(Content(""), layout=False)
            self._filter_error = False
        return True

    def _show_filter_error(self, error: Static, message: Content) -> None:
        """The error beside the input, in a width rounded up to 16 columns that only grows while the bar is
        open: a new width lays out the whole screen (10-15 ms at 50,000 rows), and the messages of
        consecutive keystrokes ("unknown kind 'a'", "… 'ar'") mostly fit the same one."""
        width = min(-(-(message.cell_length + 2) // 16) * 16, max(self.size.width * 6 // 10, 16))
        if error.styles.width is None or error.styles.width.value < width:
            error.styles.width = width
        error.update(message, layout=False)
        self._filter_error = True

    def _apply_view(self) -> None:
        if self.index is None:  # the rows of the last session are shown; the filter applies once indexed
            self._set_status("Indexing the fleet: the filter applies in a moment …")
            return
        self.table.set_view(self._filtered())
        self.shown = self.table.row_count
        self._render_header()

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.add_class("-open")
        field = self.query_one("#filter-input", Input)
        field.value = self.query_text
        field.cursor_position = len(field.value)
        self._type_into(field)

    def _filter_typed(self, text: str) -> None:
        """Each edit of the filter bar, as it happens (BarInput.on_value: the table repaints in the same frame
        as the bar)."""
        if self._set_query(text):
            self._apply_view()

    @on(Input.Submitted, "#filter-input")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._close_filter()

    def _close_filter(self) -> None:
        bar = self.query_one(FilterBar)
        if not self._filter_error:
            self.query_one("#filter-error", Static).styles.width = None  # the input takes the bar again
        if not self.query_text:
            bar.remove_class("-open")
        self.table.focus()
        self._release_keys()

    # ---- marks, sort, gaps, details -------------------------------------------------------------

    def on_server_table_marks_changed(self, message: ServerTable.MarksChanged) -> None:
        self.marked = message.count

    def action_mark_all(self) -> None:
        self.table.mark_all_shown()

    def action_clear_marks(self) -> None:
        self.table.clear_marks()

    def action_gaps(self) -> None:
        self.gap_view = not self.gap_view
        self._apply_view()
        self.notify("Gap view: servers missing at least one capability" if self.gap_view else "Gap view off",
                    markup=False, timeout=3)

    def sort_by(self, column: str, descending: bool = False) -> None:
        if self.index is None:
            return
        self.index.sort(column, descending)
        self.table.set_sort_indicator(self.index.sort_key, descending)
        self.table.show_column(self.index.sort_key)  # the arrow in view, also at 100 columns
        self._apply_view()

    def on_server_table_sort_requested(self, message: ServerTable.SortRequested) -> None:
        index = self.index
        descending = bool(index and index.sort_key == message.column_id and not index.descending)
        self.sort_by(message.column_id, descending)

    def action_sort_next(self) -> None:
        """Sort by the column right of the sorted one, as the table draws them; after the last, the first."""
        if self.index is None:
            return
        drawn = [spec.id for spec in self.table.columns_drawn]
        current = self.index.sort_key
        i = drawn.index(current) if current in drawn else -1
        self.sort_by(drawn[(i + 1) % len(drawn)])
        self._say_sort()

    def action_sort_reverse(self) -> None:
        if self.index is not None:
            self.sort_by(self.index.sort_key, not self.index.descending)
            self._say_sort()

    def _say_sort(self) -> None:
        if self.index is None:
            return
        key, descending = self.index.sort_key, self.index.descending
        title = next((spec.header for spec in self.table.columns_drawn if spec.id == key), key)
        self.notify(f"Sorted by {title} {'▼ descending' if descending else '▲ ascending'}", markup=False, timeout=2)

    def action_details(self) -> None:
        pane = self.query_one("#details")
        if pane.has_class("-open"):
            self._close_details()
        else:
            pane.add_class("-open")
            self._details_for = None
            self._follow_cursor()

    def _close_details(self) -> None:
        self.query_one("#details").remove_class("-open")
        self.table.focus()

    def on_server_table_row_highlighted(self, message: ServerTable.RowHighlighted) -> None:
        self._follow_cursor()

    def _follow_cursor(self) -> None:
        """The open details pane follows the cursor (from the cache, after a short pause in the movement)."""
        if not self.query_one("#details").has_class("-open"):
            return
        if self._details_timer is not None:
            self._details_timer.stop()
        self._details_timer = self.set_timer(0.15, self._show_cached_details)

    def _show_cached_details(self) -> None:
        from .details import DetailsPane

        server_id = self.table.highlighted_id
        pane = self.query_one(DetailsPane)
        if server_id is None:
            pane.clear("No server highlighted")
            return
        if server_id == self._details_for:
            return
        self._details_for = server_id
        server = self.by_id.get(server_id)
        if server is not None:
            pane.show_row(server, loading=False, now=self.clock())
        self.cached_details(server_id)

    @work(thread=True, exclusive=True, group="details", exit_on_error=False)
    def cached_details(self, server_id: str) -> None:
        from ..depth import cached_view

        view = cached_view(self.session.inventory, server_id, now=self.clock())
        if view is not None:
            self.call_from_thread(self._show_view, server_id, view)

    def _show_view(self, server_id: str, view) -> None:
        from .details import DetailsPane

        if self.table.highlighted_id == server_id or self._details_for == server_id:
            self.query_one(DetailsPane).show_view(view, now=self.clock())

    def on_server_table_row_selected(self, message: ServerTable.RowSelected) -> None:
        from .details import DetailsPane

        pane = self.query_one(DetailsPane)
        pane.add_class("-open")
        server = self.by_id.get(message.server_id)
        if server is not None:
            pane.show_row(server, loading=True, now=self.clock())
        self._details_for = message.server_id
        pane.focus()
        self.fresh_details(message.server_id)

    @work(exclusive=True, group="details", exit_on_error=False)
    async def fresh_details(self, server_id: str) -> None:
        """The highlighted server fresh from ARM (offline, or when ARM fails: the cache, and why)."""
        from ..depth import cached_view, fresh_view
        from .details import DetailsPane

        pane = self.query_one(DetailsPane)
        server = self.by_id.get(server_id)
        problem: str | None = None
        if not self.session.offline:
            inventory = self.session.inventory
            try:
                view = await self.session.call(
                    lambda conn: fresh_view(inventory, conn.transport, server_id, now=self.clock()))
            except ConnectFailed as e:
                problem = f"ARM unreachable: {e}"
            except ArmHttpError as e:
                problem = f"ARM: {e.describe()}"
            else:
                self._show_view(server_id, view)
                return
        # Off the UI loop: the first view of a large subscription indexes it (1.5-3.6 s at 10k servers).
        view = await asyncio.to_thread(cached_view, self.session.inventory, server_id, now=self.clock())
        if view is not None:
            self._show_view(server_id, view)
        if problem:
            pane.show_error(server, clean_text(problem, limit=300) + " — showing the cache")

    def action_focus_next_pane(self) -> None:
        pane = self.query_one("#details")
        if pane.has_class("-open") and self.table.has_focus:
            pane.focus()
        else:
            self.table.focus()

    def action_back(self) -> None:
        focused = self.focused
        if isinstance(focused, Input) and focused.id == "filter-input":
            self._close_filter()
        elif self.query_one("#details").has_class("-open"):
            self._close_details()

    # ---- keys, in the order typed ----------------------------------------------------------------------
    # Textual applies a key where it ends: a character typed into an input at the input, but a binding
    # (backspace, ctrl+u, enter, `a`) only once the key has bubbled up to the app, through one message queue
    # per widget — and the app hands on the next key meanwhile. Keys typed fast (a burst, a paste, keys
    # delivered together over SSH) overtook each other: a late backspace ate a character typed after it, a
    # late ctrl+u the whole filter (then `a` marked every server). So the app hands on one key at a time,
    # the next once the one before has been applied (_next_keys).
    # A bar also opens (takes the focus) and closes (hands it back) only when the messages queued before it
    # have run: keys typed just after `/` or `:` are sent to the bar until it has the focus (_type_into),
    # keys typed after enter or escape in a bar wait until it has closed (_hold_keys).
    # And a key that opens or closes a screen (enter in the action menu, ctrl+g in a form, enter in the plan)
    # does it through messages its handler posts behind the KeyDone: the next key waits until the screens
    # have nothing left queued and stand as at the last look (_key_settled), so it goes to the screen the key
    # opened, as a person typing ahead expects.

    def _type_into(self, field: Widget) -> None:
        """Focus ``field`` and send it every key typed from now on until it has the focus: a bar that was
        hidden cannot take the focus before the next refresh."""
        self._typing_into = field
        field.focus()

    def _is_bar(self, widget: Widget | None) -> bool:
        return widget is not None and widget.id in ("filter-input", "command-line")

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._keys_waiting.append(event)
            await self._next_keys()
            return
        await super().on_event(event)

    def _new_wait(self) -> int:
        self._waits += 1
        return self._waits

    async def _next_keys(self) -> None:
        """Hand on the keys typed, one at a time: each once the KeyDone sent behind the one before it has come
        back, and not while a bar is closing."""
        while self._keys_waiting and self._key_on_way is None and self._bar_hold is None:
            self._key_seen = self._screens_and_focus()
            self._key_deadline = time.monotonic() + KEY_SETTLE_MAX_S
            went_to = await self._route_key(self._keys_waiting.popleft())
            wait = self._new_wait()
            if went_to.post_message(KeyDone(wait)):
                self._key_on_way = wait
                self._key_screen = went_to if isinstance(went_to, Screen) else went_to.screen
                # A safety net: a widget removed before it passed the KeyDone on must not stop the keyboard.
                self.set_timer(1.0, lambda: self.post_message(KeyDone(wait)))

    def _screen_changed(self, _screen: Screen) -> None:
        """A screen closed (by the key on its way, as often) takes that key's KeyDone with it: it is done."""
        if self._key_on_way is not None and self._key_screen not in self.screen_stack:
            self.post_message(KeyDone(self._key_on_way))

    def _screens_and_focus(self) -> tuple[int, ...]:
        return (*map(id, self.screen_stack), id(self.focused))

    def _key_settled(self) -> bool:
        """Whether what the key handed on last set off has happened: no message queued on any screen or
        widget, and the screens and focus as at the last look (a screen's closing and the next one's opening
        run between messages). At most KEY_SETTLE_MAX_S: a screen always busy must not stop the keyboard."""
        busy = any(node.message_queue_size or node._next_callbacks
                   for screen in self.screen_stack for node in screen.walk_children(with_self=True))
        seen, self._key_seen = self._key_seen, self._screens_and_focus()
        return (not busy and seen == self._key_seen) or time.monotonic() > self._key_deadline

    async def on_key_done(self, message: KeyDone) -> None:
        if message.wait == self._key_on_way:
            if not self._key_settled():
                self.set_timer(KEY_SETTLE_S, lambda: self.post_message(KeyDone(message.wait)))
                return
            self._key_on_way = None
        elif message.wait == self._bar_hold:
            self._bar_hold = None
        else:
            return  # that wait had ended already
        await self._next_keys()

    async def _route_key(self, event: events.Key) -> Widget:
        """Send one key where it goes; returns the widget it went to (where its KeyDone goes)."""
        target = self._typing_into
        if target is not None:
            if self.focused is target or not target.is_attached:
                self._typing_into = None
            elif event.key != "tab":
                target._forward_event(event)
                if event.key in ("enter", "escape"):
                    self._typing_into = None
                    self._hold_keys()
                return target
        if event.key in ("enter", "escape") and self._is_bar(self.focused):
            self._hold_keys()
        went_to = self.focused or self.screen
        await super().on_event(event)
        return went_to

    def _hold_keys(self) -> None:
        """Keep the keys typed after enter or escape in a bar until the bar has closed (or, on an error,
        stayed open): then they go where the focus is (see _release_keys)."""
        self._bar_hold = hold = self._new_wait()
        # A safety net: a bar that neither closes nor says why must not swallow the keyboard.
        self.set_timer(1.0, lambda: self._release_keys(hold))

    def _release_keys(self, hold: int | None = None) -> None:
        if self._bar_hold is not None and hold in (None, self._bar_hold):
            self.post_message(KeyDone(self._bar_hold))  # after the focus change queued before it

    # ---- command mode ---------------------------------------------------------------------------

    def action_command(self) -> None:
        from .command import CommandLine

        line = self.query_one(CommandLine)
        line.add_class("-open")
        line.value = ""
        self._type_into(line)

    def command_specs(self):
        from .command import CommandSpec

        def themes(arg: str) -> list[str]:
            return sorted(t for t in self.available_themes if t.startswith(arg.strip()))

        def columns(arg: str) -> list[str]:
            return [c for c in COLUMNS if c.lower().startswith(arg.strip().lower())]

        def capabilities(arg: str) -> list[str]:
            return [c.id for c in CATALOG if c.id.startswith(arg.strip().lower())]

        def formats(arg: str) -> list[str]:
            return [f for f in ("csv", "json", "md") if f.startswith(arg.strip())]

        def subscriptions(arg: str) -> list[str]:
            return [n for n in self.subscription_names.values() if n.lower().startswith(arg.strip().lower())]

        return [
            CommandSpec("subs", ":subs", "Choose the subscriptions in scope", subscriptions),
            CommandSpec("tenant", ":tenant", "Choose the tenants in scope"),
            CommandSpec("theme", ":theme NAME", "Switch the colour theme", themes),
            CommandSpec("export", ":export csv|json|md [PATH]", "Write the servers shown to a file", formats),
            CommandSpec("kql", ":kql QUERY", "Run a KQL query (Resource Graph online, the cache offline)"),
            CommandSpec("sort", ":sort COLUMN [desc]", "Sort by a column", columns),
            CommandSpec("gaps", ":gaps [CAPABILITY]", "Servers missing any capability, or this one", capabilities),
            CommandSpec("filter", ":filter TEXT", "Set the / filter"),
            CommandSpec("refresh", ":refresh", "Refresh from Azure"),
            CommandSpec("marks", ":marks all|none", "Mark every shown server, or clear the marks",
                        lambda a: [x for x in ("all", "none") if x.startswith(a.strip())]),
            CommandSpec("help", ":help", "Show every binding and the filter language"),
            CommandSpec("quit", ":quit", "Quit"),
        ]

    def _close_command(self) -> None:
        from .command import CommandLine

        self.query_one(CommandLine).remove_class("-open")
        self.table.focus()

    def on_command_line_cancelled(self, message) -> None:
        self._close_command()
        self._release_keys()

    def on_command_line_refused(self, message) -> None:
        self._release_keys()  # the line stays open with its error: the keys typed after enter go into it

    def on_command_line_submitted(self, message) -> None:
        self._close_command()
        self._release_keys()
        self.run_command(message.spec.name, message.argument.strip())

    def run_command(self, name: str, arg: str) -> None:
        """One `:` command (also the command palette's entries)."""
        if name == "theme":
            if arg not in self.available_themes:
                self.notify(clean_text(f"No theme {arg!r}; one of: {', '.join(sorted(self.available_themes))}"),
                            severity="error", markup=False)
                return
            self.theme = arg
        elif name == "sort":
            parts = arg.split()
            try:
                self.sort_by(parts[0] if parts else "name", len(parts) > 1 and parts[1].lower().startswith("desc"))
            except ValueError as e:
                self.notify(clean_text(str(e)), severity="error", markup=False)
        elif name == "gaps":
            if not arg:
                self.gap_view = True
                self._apply_view()
            else:
                cap = resolve_capability(arg)
                if cap is None:
                    self.notify(clean_text(f"unknown capability {arg!r}"), severity="error", markup=False)
                    return
                self.gap_view = False
                self._set_filter_text(f"missing:{cap}")
        elif name == "filter":
            self._set_filter_text(arg)
        elif name == "refresh":
            self.action_refresh()
        elif name == "marks":
            (self.action_mark_all if arg == "all" else self.action_clear_marks)()
        elif name == "help":
            self.action_help()
        elif name == "quit":
            self.action_quit()
        elif name == "export":
            self._export(arg)
        elif name == "kql":
            if not arg:
                self.notify("Usage: :kql QUERY  e.g. :kql resources | summarize count() by type", markup=False)
                return
            self.run_kql(arg)
        elif name in ("subs", "tenant"):
            self._pick_scope(tenants=name == "tenant")

    def _set_filter_text(self, text: str) -> None:
        if self._set_query(text):
            bar = self.query_one(FilterBar)
            bar.set_class(bool(self.query_text), "-open")
            self.query_one("#filter-input", Input).value = self.query_text
            self._apply_view()
        else:
            self.query_one(FilterBar).add_class("-open")

    def _export(self, arg: str) -> None:
        parts = arg.split(maxsplit=1)
        fmt = parts[0].lower() if parts else "csv"
        if fmt not in ("csv", "json", "md"):
            self.notify("Usage: :export csv|json|md [PATH]", severity="error", markup=False)
            return
        stamp = self.clock().strftime("%Y%m%d-%H%M%S")
        path = Path(parts[1]).expanduser() if len(parts) > 1 else Path.cwd() / f"wsam-export-{stamp}.{fmt}"
        shown = [self.servers[i] for i in self.table.view]
        self._write_export(fmt, path, shown)

    @work(thread=True, group="export", exit_on_error=False)
    def _write_export(self, fmt: str, path: Path, shown: list[Server]) -> None:
        """Formatting tens of thousands of rows and writing them takes seconds: not on the UI loop."""
        from .. import export

        try:  # the CLI's path: from the store (the table's rows carry no evidence), the rows shown in their order
            text, written = export.from_store(self.session.inventory, fmt, ids=[s.id for s in shown])
        except Exception as e:  # a store that cannot be read: said, never a silent worker error
            self.call_from_thread(self.notify, clean_text(f"Cannot read the local cache to export: {e}"),
                                  severity="error", markup=False)
            return
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            self.call_from_thread(self.notify, clean_text(f"Cannot write {path}: {e.strerror or e}"),
                                  severity="error", markup=False)
            return
        self.call_from_thread(self.notify, clean_text(f"Wrote {len(written.servers):,} servers to {path}"), markup=False)

    @work(exclusive=True, group="kql", exit_on_error=False)
    async def run_kql(self, query: str) -> None:
        from ..kql import KqlError
        from ..kqlquery import run_offline, run_online
        from .kql_view import KqlResultScreen

        # The scope chosen with --subscription or :subs. Online, a token reads one tenant: the query goes to
        # each tenant's subscriptions with its own token, so it needs them named — the scope, else every
        # subscription known (with its tenant) from the last refresh; none known yet: the home tenant's.
        subs = list(self.session.info.subscriptions)
        self._set_status("Running the query …")
        try:
            if self.session.offline or self.connection_problem:
                store = self.session.inventory.store
                answer = await asyncio.to_thread(run_offline, store, query, subscriptions=subs, now=self.clock())
            else:
                known = {str(s.get("subscriptionId")): str(s.get("tenantId") or "")
                         for s in (self.snapshot.subscriptions if self.snapshot else ()) if s.get("subscriptionId")}
                answer = await self.session.call(
                    lambda conn: run_online(conn.transport, query, subs or list(known), tenants=known))
        except KqlError as e:  # shown with a caret under the position the engine (or Resource Graph) named
            self._set_status(self._idle_status())
            self.push_screen(KqlResultScreen(query, error=e, now=self.clock()))
            return
        except (ConnectFailed, ArmHttpError) as e:
            self._set_status(self._idle_status())
            text = e.describe() if isinstance(e, ArmHttpError) else str(e)
            self.notify(clean_text(text), title="Resource Graph", severity="error", markup=False, timeout=10)
            return
        self._set_status(self._idle_status())
        self.push_screen(KqlResultScreen(query, answer, now=self.clock()))

    def _pick_scope(self, *, tenants: bool) -> None:
        from .pickers import ScopePicker

        # Every subscription known, not only those in scope: one taken out can be ticked back in.
        snapshot = self.snapshot
        subs = list(snapshot.known_subscriptions or snapshot.subscriptions) if snapshot else []
        if snapshot is None or not subs:
            self.notify("No subscriptions known yet.", severity="warning", markup=False)
            return
        counts = {str(s.get("subscriptionId", "")).lower(): 0 for s in snapshot.subscriptions}  # in scope
        for s in self.servers:
            key = s.subscription_id.lower()
            counts[key] = counts.get(key, 0) + 1

        def chosen(ids: list[str] | None) -> None:
            if ids is None:
                return
            self.session.info.subscriptions = tuple(ids)
            self.notify(f"Scope: {len(ids)} subscription{'s' * (len(ids) != 1)}", markup=False)
            self.load_snapshot(then_refresh=not self.session.offline)

        self.push_screen(ScopePicker(subs, counts, tenants=tenants,
                                     selected=list(self.session.info.subscriptions)), chosen)

    # ---- help, palette, quit ------------------------------------------------------------------

    def action_help(self) -> None:
        from .help import HelpScreen

        self.push_screen(HelpScreen(self.binding_rows(), self.command_specs()))

    def binding_rows(self) -> list[tuple[str, str, str]]:
        """(keys as shown, action id, description) for every binding of the console and its table, with the
        config file's rebindings applied."""
        keymap = dict(self._keymap) if getattr(self, "_keymap", None) else {}

        def shown(keys: str) -> str:
            return " ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(","))

        from .jobs import JobsScreen
        from .kql_view import KqlResultScreen

        rows = []
        for a in ACTIONS:
            rows.append((shown(keymap.get(a.id, a.keys)), a.id, a.help))
        for prefix, bindings in (("", ServerTable.BINDINGS), ("Jobs pane: ", JobsScreen.BINDINGS),
                                 (":kql answer: ", KqlResultScreen.BINDINGS)):
            for b in bindings:
                if isinstance(b, Binding):
                    rows.append((shown(keymap.get(b.id or "", b.key)), b.id or b.action, prefix + b.description))
        rows.append((self.COMMAND_PALETTE_BINDING, "command_palette", "Command palette: every action, searchable"))
        return rows

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's own, the console's actions and the `:` commands that take an argument; in front of another
        screen only the app-wide actions (the others act on the table behind it)."""
        yield from super().get_system_commands(screen)
        on_fleet = isinstance(screen, FleetScreen)
        for a in ACTIONS:
            if a.id in ("back", "focus_next_pane") or not (on_fleet or a.id in APP_WIDE):
                continue
            yield SystemCommand(a.title, a.help, lambda a=a: self.run_action(a.id))
        if not on_fleet:
            return
        for spec in self.command_specs():
            if spec.name in ("theme", "sort", "export", "kql", "filter", "gaps"):
                yield SystemCommand(f":{spec.name}", spec.help, lambda n=spec.name: self._prefill_command(n))

    def _prefill_command(self, name: str) -> None:
        from .command import CommandLine

        self.action_command()
        line = self.query_one(CommandLine)
        line.value = f"{name} "
        line.cursor_position = len(line.value)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in FLEET_ACTIONS and not isinstance(self.screen, FleetScreen):
            return False  # another screen is in front (also when asked from the command palette)
        # `r` offline or while refreshing, `o` read-only or offline: the action runs and says why it does nothing
        # (a binding turned off here would do nothing, silently — from the key and from the palette alike).
        # A prompt's key while typing goes into the input.
        return not (action in PROMPTS and (self._typing_into is not None or isinstance(self.focused, (Input, TextArea))))

    def work_running(self) -> bool:
        return self.refreshing or bool(self.ops.running)

    # ---- actions and jobs (ui/actions.py) --------------------------------------------------------

    def action_act(self) -> None:
        self.ops.open_menu()

    def action_jobs(self) -> None:
        from .jobs import JobsScreen

        if not isinstance(self.screen, JobsScreen):
            self.push_screen(JobsScreen())

    def on_job_update(self, message: JobUpdate) -> None:
        self.ops.on_job_update(message.event)

    def on_job_ended(self, message: JobEnded) -> None:
        self.ops.on_job_ended(message.job_id)

    def action_quit(self) -> None:  # type: ignore[override]  (Textual's is async; a sync action is fine)
        if self.work_running():
            def answer(yes: bool | None) -> None:
                if yes:
                    self.exit()

            self.push_screen(ConfirmScreen("A refresh or a job is still running. Quit anyway? (The cache keeps what "
                                           "has arrived; an unfinished job resumes from the journal.)"), answer)
            return
        self.exit()


# The glyph sets are re-exported for the CLI's --ascii choice.
GLYPHS = {"unicode": g.UNICODE, "ascii": g.ASCII}
