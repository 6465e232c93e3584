"""`:subs` and `:tenant`: choose the subscriptions in scope, one by one or a whole tenant at a time.

The list has the focus: ``space`` toggles the highlighted row, ``a`` selects every row shown (or clears
them when all are selected), ``enter`` confirms, ``escape`` cancels. Typing any other character filters
(``/`` goes to the filter too, to type an ``a`` or a space); ``down`` or ``enter`` in the filter return to
the list, ``escape`` there clears it. The answer is always a list of subscription ids, in the order given.

Names and ids come from ARM: they pass ``clean_text`` and are drawn as ``Content`` (never markup).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ..fleet.model import clean_text

NAME_WIDTH = 28
ID_WIDTH = 36
INACTIVE_STATES = ("disabled", "deleted")


@dataclass(frozen=True)
class ScopeRow:
    """One line of the picker: a subscription, or a tenant with its subscriptions."""

    key: str  # lower-case subscription or tenant id
    label: str  # what is drawn after the check box
    haystack: str  # lower-case text the filter searches
    subscriptions: tuple[str, ...]  # the subscription ids this row stands for


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def _servers(ids: Sequence[str], servers: Mapping[str, int]) -> str:
    """How many servers the subscriptions hold; none counted: they are out of scope (not loaded)."""
    counts = [servers[i.lower()] for i in ids if i.lower() in servers]
    return _plural(sum(counts), "server") if counts else "out of scope"


def subscription_rows(subscriptions: Sequence[Mapping], servers: Mapping[str, int]) -> list[ScopeRow]:
    rows = []
    for s in subscriptions:
        sid = clean_text(s.get("subscriptionId"))
        if not sid:
            continue
        name = clean_text(s.get("displayName"), limit=200) or sid
        tenant = clean_text(s.get("tenantId"))
        state = clean_text(s.get("state")) or "Enabled"
        # The tenant last: on a narrow terminal it is what gets cut (lines never wrap).
        label = (f"{_fit(name, NAME_WIDTH):<{NAME_WIDTH}} {sid:<{ID_WIDTH}} {_servers((sid,), servers):>13}  "
                 f"{_fit(state, 10):<10} tenant {tenant}")
        rows.append(ScopeRow(sid.lower(), label, f"{name} {sid} {tenant} {state}".lower(), (sid,)))
    return rows


def tenant_rows(subscriptions: Sequence[Mapping], servers: Mapping[str, int],
                tenant_names: Mapping[str, str]) -> list[ScopeRow]:
    by_tenant: dict[str, list[Mapping]] = {}
    for s in subscriptions:
        if clean_text(s.get("subscriptionId")):
            by_tenant.setdefault(clean_text(s.get("tenantId")).lower(), []).append(s)
    names = {k.lower(): v for k, v in tenant_names.items()}
    rows = []
    for tenant, subs in by_tenant.items():
        ids = tuple(clean_text(s.get("subscriptionId")) for s in subs)
        name = clean_text(names.get(tenant), limit=200) or ("—" if tenant else "(no tenant)")  # the id has its column
        inactive = sum(1 for s in subs if str(s.get("state", "")).lower() in INACTIVE_STATES)
        state = f"{inactive} disabled" if inactive else "Enabled"
        label = (f"{_fit(name, NAME_WIDTH):<{NAME_WIDTH}} {tenant:<{ID_WIDTH}} {_plural(len(ids), 'subscription'):>17} "
                 f"{_servers(ids, servers):>13}  {state}")
        sub_names = " ".join(clean_text(s.get("displayName")) for s in subs)
        rows.append(ScopeRow(tenant, label, f"{name} {tenant} {sub_names} {' '.join(ids)}".lower(), ids))
    return rows


class ScopePicker(ModalScreen[list[str] | None]):
    """Choose subscriptions (or tenants, ``tenants=True``). Dismisses with the chosen subscription ids, or
    None when cancelled. ``servers`` maps a lower-case subscription id to its server count (one not in it is
    out of scope: its servers are not loaded, the row says so); ``selected``
    (ids or display names) is the current scope, empty meaning every subscription."""

    DEFAULT_CSS = """
    ScopePicker { align: center middle; }
    ScopePicker > #scope { width: 95%; max-width: 160; height: 80%; border: round $primary; background: $surface; padding: 0 1; }
    ScopePicker #scope-title { text-style: bold; height: 1; }
    ScopePicker #scope-filter { border: none; height: 1; padding: 0; margin-bottom: 1; }
    ScopePicker #scope-list { height: 1fr; border: none; text-wrap: nowrap; text-overflow: ellipsis; }
    ScopePicker #scope-status { height: 1; color: $text-muted; }
    ScopePicker #scope-status.-error { color: $text-error; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle", "Toggle", id="scope.toggle"),
        Binding("a", "toggle_all", "All", id="scope.all"),
        Binding("slash", "filter", "Filter", id="scope.filter"),
        Binding("escape", "cancel", "Cancel", id="scope.cancel"),
    ]

    LIST_KEYS: ClassVar[frozenset[str]] = frozenset({"space", "a", "slash"})  # keys of BINDINGS that type nothing

    def __init__(self, subscriptions: Sequence[Mapping], servers: Mapping[str, int] | None = None, *,
                 tenants: bool = False, selected: Sequence[str] = (), tenant_names: Mapping[str, str] | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        servers = servers or {}
        self.tenants = tenants
        subscriptions = self._distinct(subscriptions)
        self.order = [clean_text(s.get("subscriptionId")) for s in subscriptions]
        self.rows = (tenant_rows(subscriptions, servers, tenant_names or {}) if tenants
                     else subscription_rows(subscriptions, servers))
        in_scope = self._initial_scope(subscriptions, selected)
        self.chosen: set[str] = {r.key for r in self.rows if {s.lower() for s in r.subscriptions} <= in_scope}
        self.shown: list[ScopeRow] = list(self.rows)
        # Option ids by position: keys come from ARM and may be empty (a subscription without a tenant).
        self._option_ids = {r.key: f"row-{i}" for i, r in enumerate(self.rows)}

    @staticmethod
    def _distinct(subscriptions: Sequence[Mapping]) -> list[Mapping]:
        """Subscriptions with an id, each once (ARM data: a repeat or a missing id must not break the list)."""
        seen: set[str] = set()
        out = []
        for s in subscriptions:
            sid = clean_text(s.get("subscriptionId")).lower() if isinstance(s, Mapping) else ""
            if sid and sid not in seen:
                seen.add(sid)
                out.append(s)
        return out

    def _initial_scope(self, subscriptions: Sequence[Mapping], selected: Sequence[str]) -> set[str]:
        if not selected:
            return {s.lower() for s in self.order}
        wanted = {str(w).lower() for w in selected}
        return {clean_text(s.get("subscriptionId")).lower() for s in subscriptions
                if clean_text(s.get("subscriptionId")).lower() in wanted or str(s.get("displayName", "")).lower() in wanted}

    # ---- layout -----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        what = "tenants" if self.tenants else "subscriptions"
        with Vertical(id="scope"):
            yield Static(Content(f"Scope: choose {what}"), id="scope-title")
            yield Input(placeholder="type to filter", id="scope-filter", select_on_focus=False)
            yield OptionList(id="scope-list")
            yield Static(Content(""), id="scope-status")
            yield Static(Content("space toggle · a all/none · type or / filter · enter confirm · escape cancel"))

    def on_mount(self) -> None:
        self._fill()
        self.query_one(OptionList).focus()

    def _prompt(self, row: ScopeRow) -> Content:
        return Content(("[x] " if row.key in self.chosen else "[ ] ") + row.label)

    def _fill(self) -> None:
        words = self.query_one("#scope-filter", Input).value.lower().split()
        self.shown = [r for r in self.rows if all(w in r.haystack for w in words)]
        options = self.query_one(OptionList)
        options.set_options(Option(self._prompt(r), id=self._option_ids[r.key]) for r in self.shown)
        if self.shown:
            options.highlighted = 0
        self._show_status()

    def _show_status(self, error: str = "") -> None:
        status = self.query_one("#scope-status", Static)
        status.set_class(bool(error), "-error")
        if error:
            status.update(Content(error))
            return
        subs = len(self.selected_subscriptions())
        shown = f" · {len(self.shown):,} of {len(self.rows):,} shown" if len(self.shown) != len(self.rows) else ""
        status.update(Content(f"{_plural(subs, 'subscription')} selected{shown}"))

    # ---- the answer -------------------------------------------------------------------------------

    def selected_subscriptions(self) -> list[str]:
        """The chosen subscription ids, in the order the picker was given them."""
        ids = {s.lower() for r in self.rows if r.key in self.chosen for s in r.subscriptions}
        return [s for s in self.order if s.lower() in ids]

    # ---- keys -------------------------------------------------------------------------------------

    def _redraw(self, rows: Sequence[ScopeRow]) -> None:
        options = self.query_one(OptionList)
        for row in rows:
            options.replace_option_prompt(self._option_ids[row.key], self._prompt(row))
        self._show_status()

    def action_toggle(self) -> None:
        options = self.query_one(OptionList)
        if options.highlighted is None or not self.shown:
            return
        row = self.shown[options.highlighted]
        self.chosen.symmetric_difference_update({row.key})
        self._redraw([row])

    def action_toggle_all(self) -> None:
        keys = {r.key for r in self.shown}
        if keys <= self.chosen:
            self.chosen -= keys
        else:
            self.chosen |= keys
        self._redraw(self.shown)

    def action_filter(self) -> None:
        self.query_one("#scope-filter", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected)
    def _confirm(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        chosen = self.selected_subscriptions()
        if not chosen:
            self._show_status("Choose at least one (space toggles, a selects all), or escape to keep the scope.")
            return
        self.dismiss(chosen)

    def on_key(self, event: events.Key) -> None:
        """Typing on the list filters: the character goes to the filter, and so does the focus."""
        if (not isinstance(self.focused, OptionList) or not event.is_printable or event.character is None
                or event.key in self.LIST_KEYS):
            return
        event.stop()
        event.prevent_default()
        field = self.query_one("#scope-filter", Input)
        field.focus()
        field.insert_text_at_cursor(event.character)

    @on(Input.Changed, "#scope-filter")
    def _filter_changed(self) -> None:
        self._fill()

    @on(Input.Submitted, "#scope-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(OptionList).focus()

    def key_down(self, event: events.Key) -> None:
        if isinstance(self.focused, Input):
            event.stop()
            self.query_one(OptionList).focus()

    def key_escape(self, event: events.Key) -> None:
        if isinstance(self.focused, Input):  # escape in the filter clears it; on the list it cancels
            event.stop()
            event.prevent_default()
            self.query_one("#scope-filter", Input).value = ""
            self.query_one(OptionList).focus()
