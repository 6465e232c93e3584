"""The console's action screens: choose an action for the targets, fill its small form, read the plan, confirm.

    o  → ActionMenu (the actions for the marked servers, or the highlighted one)
       → ActionForm (that action's parameters; none for power, assess, identity)
       → PlanScreen (every target and its call, the skipped ones by reason, the az commands; confirm)
       → the job runs on the session's engine; J shows it (ui/jobs.py)

``ConsoleActions`` is the app's side of it: it owns the flow, runs jobs through the session (the engine
lives on the session's ARM loop), turns the engine's events into messages, and re-reads a server through
the details pane's depth code when a target succeeds, so its row shows the effect at once.

Every string from ARM, the journal or the user is rendered as ``Content``/``Text`` (never markup).
Secrets (Run Command protected parameters, extension protected settings) are typed into password inputs,
handed to the engine for the one job, and never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, SelectionList, Static, TextArea
from textual.widgets.option_list import Option

from ..arm.common import ArmHttpError
from ..config import config_dir
from ..fleet.model import Kind, Server, clean_text
from ..ops.catalog import ACTIONS as CATALOG_ACTIONS
from ..ops.catalog import CLASSIFICATIONS, EXTENSIONS, REBOOT_SETTINGS, Action, ActionError, installed
from ..ops.gate import ReadOnlyError
from ..ops.journal import RETRYABLE, JobBusyError
from ..ops.plan import CONFIRM_THRESHOLD, Plan, plan, secrets_for
from ..session import ConnectFailed

if TYPE_CHECKING:
    from ..depth import RuleChoice
    from ..ops.engine import JobEvent
    from .app import WsamApp

SHOWN = 500  # plan lines drawn per section before "… and N more" (the az commands are copied in full)
ROW_REFRESHES = 4  # reads at once for rows after their target succeeded (most need none: the engine re-read)
ROW_BATCH_S = 0.5  # successes gathered this long, then their rows applied together

# The menu: (group, action id, one-line description). Order is the order shown.
MENU: tuple[tuple[str, str, str], ...] = (
    ("Extensions", "extension.install", "Install a Windows extension from the catalog (AMA, MDE, WAC, …)"),
    ("Extensions", "extension.remove", "Remove an installed extension"),
    ("Extensions", "extension.upgrade", "Upgrade an extension (Arc: upgradeExtensions; VMs: a version bump)"),
    ("Run command", "run-command", "Run a PowerShell script (Run Command v2); outputs grouped in the jobs pane"),
    ("Patches", "patch.assess", "Assess missing patches (Update Manager)"),
    ("Patches", "patch.install", "Install patches: classifications, KBs, reboot setting, maximum duration"),
    ("Power", "power.start", "Start the VMs"),
    ("Power", "power.stop", "Stop (power off) the VMs; they stay allocated and billed"),
    ("Power", "power.restart", "Restart the running VMs"),
    ("Power", "power.deallocate", "Stop and deallocate the VMs"),
    ("Tags", "tags.add", "Add tags (servers that have them all are skipped)"),
    ("Tags", "tags.change", "Set tags to new values (added where missing)"),
    ("Tags", "tags.remove", "Remove tags by name"),
    ("Identity", "identity.enable", "Enable a system-assigned managed identity on the VMs"),
    ("Monitor", "monitor.associate-dcr", "Associate a data collection rule (with the agent, the Monitor cell turns on)"),
    ("Monitor", "monitor.remove-dcr", "Remove a data collection rule association"),
)
NO_FORM = frozenset({"patch.assess", "power.start", "power.stop", "power.restart", "power.deallocate",
                     "identity.enable"})
SCRIPT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def scripts_dir() -> Path:
    return config_dir() / "scripts"


def saved_scripts(directory: Path | None = None) -> list[str]:
    """The names of the saved scripts (``<name>.ps1`` in the config dir), sorted."""
    directory = directory or scripts_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.ps1") if p.is_file() and SCRIPT_NAME.match(p.stem))


def load_script(name: str, directory: Path | None = None) -> str:
    if not SCRIPT_NAME.match(name):
        raise ActionError(f"not a script name: {name!r}")
    path = (directory or scripts_dir()) / f"{name}.ps1"
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ActionError(f"cannot read {path}: {e}") from e


def save_script(name: str, text: str, directory: Path | None = None) -> Path:
    """Write a script as ``<name>.ps1`` (directory 0700, file 0600). Parameters are not saved with it."""
    if not SCRIPT_NAME.match(name):
        raise ActionError("a script name is letters, digits, '.', '_' or '-' (at most 64)")
    directory = directory or scripts_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{name}.ps1"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)
    return path


def words(text: str, what: str) -> list[str]:
    """Space-separated items; quotes keep spaces inside one (``env=prod "owner=Jane Doe"``)."""
    try:
        return shlex.split(text)
    except ValueError as e:
        raise ActionError(f"{what}: {e}") from e


def applies_to(act: Action, servers: Sequence[Server]) -> bool:
    """Whether the action can apply to one of the servers by kind (an extension: to any catalog entry)."""
    kinds = {s.kind for s in servers}
    if act.id.startswith("extension."):
        return any(spec.kinds & kinds for spec in EXTENSIONS.values())
    return bool(act.kinds & kinds)


def ready_count(act: Action, servers: Sequence[Server]) -> int | None:
    """How many servers the action applies to now, when that does not depend on its parameters."""
    if act.id not in NO_FORM and act.id != "run-command":
        return None
    return sum(1 for s in servers if act.skip_reason(s, {}) is None)


# ---- messages ----------------------------------------------------------------------------------------


class JobUpdate(Message):
    """One JobEvent from the engine (posted from the ARM loop's thread; post_message is thread-safe)."""

    def __init__(self, event: JobEvent) -> None:
        super().__init__()
        self.event = event


class JobEnded(Message):
    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id


# ---- the menu ----------------------------------------------------------------------------------------


class ActionMenu(ModalScreen[str | None]):
    """The actions for the targets, grouped, each with a one-line description; enter chooses one."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss(None)", "Close")]
    DEFAULT_CSS = """
    ActionMenu { align: center middle; }
    ActionMenu > Vertical { width: 96; max-width: 100%; height: auto; max-height: 90%; border: thick $accent;
                            background: $surface; padding: 0 1; }
    ActionMenu #menu-title { margin-bottom: 1; }
    ActionMenu OptionList { height: auto; max-height: 30; }
    """

    def __init__(self, servers: Sequence[Server]) -> None:
        super().__init__()
        self.servers = list(servers)

    def compose(self) -> ComposeResult:
        n = len(self.servers)
        kinds = {s.kind for s in self.servers}
        mix = " and ".join(k for k, present in (("Azure VMs", Kind.VM in kinds), ("Arc servers", Kind.ARC in kinds))
                           if present)
        title = f"Act on {n:,} server{'s' * (n != 1)} ({mix})" if n != 1 else \
            f"Act on {clean_text(self.servers[0].name)}"
        options: list[Option | None] = []
        group = ""
        for grp, action_id, help_ in MENU:
            act = CATALOG_ACTIONS[action_id]
            if not applies_to(act, self.servers):
                continue
            if grp != group:
                group = grp
                options.append(Option(Content.styled(grp, "bold $accent"), disabled=True))
            ready = ready_count(act, self.servers)
            count = f"  [{ready:,} of {n:,} ready]" if ready is not None and n > 1 else ""
            label = Content.assemble(("  " + act.title, "bold"), " — " + help_, (count, "$text-muted"))
            options.append(Option(label, id=action_id))
        with Vertical():
            yield Static(Content(title), id="menu-title")
            yield OptionList(*options, id="action-list", markup=False)
            yield Static(Content("enter: choose · esc: close"), classes="hint")

    def on_mount(self) -> None:
        menu = self.query_one(OptionList)
        menu.focus()
        menu.action_first()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


# ---- the forms ---------------------------------------------------------------------------------------


class ActionForm(ModalScreen[dict | None]):
    """The parameters of one action. Dismissed with the parameters (secrets included, for this one job)
    once the action's own validation accepts them; a bad value is explained under the form."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+g", "submit", "Plan", priority=True),
    ]
    DEFAULT_CSS = """
    ActionForm { align: center middle; }
    ActionForm > VerticalScroll { width: 100; max-width: 100%; height: auto; max-height: 95%; border: thick $accent;
                                  background: $surface; padding: 0 1; }
    ActionForm Label { margin-top: 1; color: $text-muted; }
    ActionForm TextArea { height: 10; }
    ActionForm SelectionList { height: auto; max-height: 10; }
    ActionForm Horizontal { height: auto; }
    ActionForm Horizontal > Input { width: 1fr; }
    ActionForm #form-error { color: $error; margin-top: 1; }
    ActionForm #form-buttons { margin-top: 1; }
    ActionForm Button { margin-right: 2; }
    """

    def __init__(self, action_id: str, servers: Sequence[Server], rules: Sequence[RuleChoice] = (),
                 subscription_names: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.act = CATALOG_ACTIONS[action_id]
        self.servers = list(servers)
        self.rules = list(rules)  # the data collection rules the store knows (monitor.*)
        self.subscription_names = dict(subscription_names or {})

    # -- layout per action

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Content.styled(self.act.title, "bold"))
            yield from self._fields()
            yield Static(Content(""), id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Plan (ctrl+g)", id="plan", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def _fields(self) -> ComposeResult:
        aid = self.act.id
        if aid.startswith("extension."):
            kinds = {s.kind for s in self.servers}
            specs = [spec for spec in EXTENSIONS.values() if spec.kinds & kinds]
            if aid != "extension.install":  # remove / upgrade: the extensions the targets have
                present = [spec for spec in specs if any(installed(s, spec) for s in self.servers)]
                specs = present or specs
            yield Label("Extension")
            yield Select([(f"{spec.title} ({spec.handler} {spec.version})", spec.key) for spec in specs],
                         id="extension", allow_blank=False)
            if aid != "extension.remove":
                yield Label("Version (typeHandlerVersion; empty: the catalog's)")
                yield Input(id="version", placeholder="e.g. 1.2")
            if aid == "extension.install":
                yield Label("Settings (JSON object; empty: the catalog's defaults)")
                yield Input(id="settings", placeholder='{"key": "value"}')
                yield Label("Protected settings (JSON; sent once, never stored or shown)")
                yield Input(id="protected-settings", password=True)
        elif aid == "run-command":
            scripts = saved_scripts()
            yield Label(Content(f"Saved scripts ({scripts_dir()})"))  # a path may hold [brackets]: not markup
            with Horizontal():
                yield Select([(name, name) for name in scripts], id="saved-script", prompt="load a saved script …")
                yield Input(id="save-name", placeholder="name to save as")
                yield Button("Save", id="save-script")
            yield Label("Script (PowerShell)")
            yield TextArea(id="script", language=None, soft_wrap=False, show_line_numbers=True, tab_behavior="indent")
            yield Label("Parameters: NAME=VALUE … (quotes keep spaces)")
            yield Input(id="parameters", placeholder="Service=Spooler")
            yield Label("Protected parameter (its value is never stored, logged or shown)")
            with Horizontal():
                yield Input(id="protected-name", placeholder="NAME")
                yield Input(id="protected-value", placeholder="value", password=True)
            yield Label("Timeout (seconds, 30 – 86400)")
            yield Input(id="timeout", value="3600", type="integer")
        elif aid == "patch.install":
            yield Label("Classifications")
            yield SelectionList[str](*((c, c, c in ("Critical", "Security")) for c in CLASSIFICATIONS), id="classes")
            yield Label("KBs to include (space-separated; empty: all in the classifications)")
            yield Input(id="kb-include", placeholder="KB5044281 5044033")
            yield Label("KBs to exclude")
            yield Input(id="kb-exclude")
            yield Label("Reboot")
            yield Select([(r, r) for r in REBOOT_SETTINGS], id="reboot", value="IfRequired", allow_blank=False)
            yield Label("Maximum duration (ISO 8601)")
            yield Input(id="max-duration", value="PT2H")
        elif aid.startswith("monitor."):
            yield Label("Data collection rule")
            if not self.rules:
                yield Static(Content("The fleet knows no data collection rule: create one in Azure Monitor, "
                                     "then refresh (r)."), id="no-rules")
            names = self.subscription_names
            yield Select([(Content(f"{r.name}  ({r.resource_group}, {names.get(r.subscription_id, r.subscription_id)})"),
                           r.id) for r in self.rules], id="rule", prompt="pick a rule …")
        elif aid.startswith("tags."):
            op = aid.split(".", 1)[1]
            yield Label("Tags to remove: NAME … (or NAME=VALUE)" if op == "remove" else "Tags: NAME=VALUE …")
            yield Input(id="tags", placeholder="env=prod \"owner=Jane Doe\"" if op != "remove" else "costCenter")

    def on_mount(self) -> None:
        first = next(iter(self.query("Select, Input, TextArea, SelectionList").results()), None)
        if self.act.id == "run-command":
            first = self.query_one("#script", TextArea)
        if first is not None:
            first.focus()

    # -- reading the form

    def _value(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()

    def params(self) -> dict[str, Any]:
        """The parameters as the catalog takes them (secrets included). Raises ActionError."""
        aid = self.act.id
        if aid.startswith("extension."):
            params: dict[str, Any] = {"extension": self.query_one("#extension", Select).value}
            if aid != "extension.remove" and self._value("#version"):
                params["version"] = self._value("#version")
            if aid == "extension.install":
                for key, selector, what in (("settings", "#settings", "settings"),
                                            ("protected_settings", "#protected-settings", "protected settings")):
                    raw = self.query_one(selector, Input).value.strip()
                    if raw:
                        try:
                            params[key] = json.loads(raw)
                        except ValueError as e:
                            # never echo the protected text back
                            raise ActionError(f"{what}: not JSON ({e.msg} at column {e.colno})") from None
            return params
        if aid == "run-command":
            protected: dict[str, str] = {}
            name = self._value("#protected-name")
            value = self.query_one("#protected-value", Input).value
            if name or value:
                if not name or not value:
                    raise ActionError("a protected parameter needs both its name and its value")
                protected[name] = value
            timeout = self._value("#timeout") or "3600"
            if not timeout.isdigit():
                raise ActionError("timeout must be a number of seconds")
            return {"script": self.query_one("#script", TextArea).text,
                    "parameters": words(self._value("#parameters"), "parameters"),
                    "protected_parameters": protected, "timeout": int(timeout)}
        if aid == "patch.install":
            return {"classifications": list(self.query_one("#classes", SelectionList).selected),
                    "kb_include": re.split(r"[\s,]+", self._value("#kb-include")) if self._value("#kb-include") else [],
                    "kb_exclude": re.split(r"[\s,]+", self._value("#kb-exclude")) if self._value("#kb-exclude") else [],
                    "reboot": self.query_one("#reboot", Select).value, "max_duration": self._value("#max-duration")}
        if aid.startswith("tags."):
            return {"tags": words(self._value("#tags"), "tags")}
        if aid.startswith("monitor."):
            rule = self.query_one("#rule", Select).value
            if not isinstance(rule, str):
                raise ActionError("pick a data collection rule")
            return {"rule": rule}
        return {}

    def action_submit(self) -> None:
        error = self.query_one("#form-error", Static)
        try:
            params = self.params()
            if self.act.id == "patch.install" and not params["classifications"]:
                raise ActionError("choose at least one classification")
            self.act.validate({**params, "run_name": "check"})  # the plan names the run; only validity here
        except ActionError as e:
            error.update(Content(clean_text(str(e), limit=300)))
            return
        self.dismiss(params)

    @on(Button.Pressed, "#plan")
    def _plan(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    # -- saved scripts

    @on(Select.Changed, "#saved-script")
    def _load_script(self, event: Select.Changed) -> None:
        if not isinstance(event.value, str):
            return
        try:
            text = load_script(event.value)
        except ActionError as e:
            self.query_one("#form-error", Static).update(Content(clean_text(str(e), limit=300)))
            return
        self.query_one("#script", TextArea).text = clean_text(text, keep_newlines=True)
        self.query_one("#save-name", Input).value = event.value

    @on(Button.Pressed, "#save-script")
    def _save_script(self) -> None:
        name = self._value("#save-name")
        text = self.query_one("#script", TextArea).text
        try:
            if not text.strip():
                raise ActionError("the script is empty")
            path = save_script(name, text)
        except (ActionError, OSError) as e:
            self.query_one("#form-error", Static).update(Content(clean_text(str(e), limit=300)))
            return
        self.query_one("#form-error", Static).update(Content(""))
        self.notify(clean_text(f"Saved {path} (parameters are not saved)"), markup=False)


# ---- the plan ----------------------------------------------------------------------------------------


def _more(total: int) -> Content:
    return Content.styled(f"  … and {total - SHOWN:,} more\n", "$text-muted") if total > SHOWN else Content("")


def plan_content(p: Plan) -> Content:
    """The plan as the operator reads it: targets and their calls, skipped by reason, az commands."""
    parts: list[Content] = [Content.styled(f"Targets ({len(p.targets):,})\n", "bold")]
    for t in p.targets[:SHOWN]:
        flag = Content.styled("  [protected subscription]", "$warning") if t.protected else Content("")
        parts.append(Content.assemble("  ", (clean_text(t.target.name), "bold"), flag, "  ",
                                      f"{t.call.method} {clean_text(t.call.path)}?api-version={t.call.api_version}",
                                      "\n"))
    parts.append(_more(len(p.targets)))
    if not p.targets:
        parts.append(Content.styled("  none: nothing will be sent\n", "$text-muted"))
    for note in p.notes:  # before the details: a warning is read before y
        parts.append(Content.styled(f"note: {clean_text(note)}\n", "$warning"))
    for title, text in p.blocks:
        parts.append(Content.styled(f"{title}\n", "bold"))
        parts.extend(Content.assemble(("  │ ", "$text-muted"), clean_text(line.expandtabs(4)), "\n") for line in text.splitlines())
    if p.targets and p.targets[0].call.body is not None:
        body = json.dumps(p.targets[0].call.body, ensure_ascii=False)
        parts.append(Content.assemble(("Body (first target): ", "bold"), clean_text(body, limit=600), "\n"))
    groups = p.skipped_by_reason()
    parts.append(Content.styled(f"\nSkipped ({len(p.skipped):,})\n", "bold"))
    for reason, skipped in groups.items():
        names = ", ".join(clean_text(s.target.name) for s in skipped[:SHOWN])
        more = f" … and {len(skipped) - SHOWN:,} more" if len(skipped) > SHOWN else ""
        parts.append(Content.assemble("  ", (f"{clean_text(reason)} ({len(skipped):,})", "$warning"), ": ",
                                      names + more, "\n"))
    if p.targets:
        parts.append(Content.styled(f"\nEquivalent az commands ({len(p.targets):,}; c copies them all)\n", "bold"))
        for cmd in p.az_commands[:SHOWN]:  # as copied: a quoted script keeps its lines
            parts.append(Content("  " + clean_text(cmd.expandtabs(4), keep_newlines=True) + "\n"))
        parts.append(_more(len(p.targets)))
    return Content("").join(parts)


class PlanScreen(ModalScreen[bool]):
    """The plan, then the confirmation: y (or the button); a typed count above the threshold or in a
    protected subscription. Dismissed True only when confirmed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "dismiss(False)", "Cancel"),
        Binding("y", "confirm", "Run"),
        Binding("c", "copy_az", "Copy az"),
    ]
    DEFAULT_CSS = """
    PlanScreen { align: center middle; }
    PlanScreen > Vertical { width: 95%; height: 90%; border: thick $warning; background: $surface; padding: 0 1; }
    PlanScreen #plan-body { height: 1fr; }
    PlanScreen #plan-confirm { height: auto; margin-top: 1; }
    PlanScreen #plan-error { color: $error; }
    PlanScreen Horizontal { height: auto; }
    PlanScreen Button { margin-right: 2; }
    """

    def __init__(self, p: Plan) -> None:
        super().__init__()
        self.plan = p

    def compose(self) -> ComposeResult:
        p = self.plan
        with Vertical():
            yield Static(Content.assemble((f"Plan {p.id}: ", "bold"), (clean_text(p.title), "bold"),
                                          f"  —  {len(p.targets):,} target(s), {len(p.skipped):,} skipped"))
            with VerticalScroll(id="plan-body"):
                yield Static(plan_content(p), id="plan-text")
            with Vertical(id="plan-confirm"):
                if p.readonly:
                    yield Static(Content.styled("Read-only: nothing will be sent.", "bold $warning"))
                elif not p.targets:
                    yield Static(Content("Nothing to do: every server was skipped."))
                elif p.confirm_required:
                    why = "targets in a protected subscription" if any(t.protected for t in p.targets) else \
                        f"more than {CONFIRM_THRESHOLD} targets"
                    yield Static(Content(f"Type {p.confirm_text} and press enter to act on {p.confirm_text} "
                                         f"servers ({why})."))
                    yield Input(id="confirm-count", placeholder=f"type {p.confirm_text}")
                else:
                    yield Static(Content(f"Act on {len(p.targets):,} server(s)? y runs, n or esc cancels."))
                yield Static(Content(""), id="plan-error")
                with Horizontal():
                    if self.can_run and not p.confirm_required:
                        yield Button("Run (y)", id="run", variant="warning")
                    yield Button("Copy az (c)", id="copy")
                    yield Button("Cancel (esc)", id="cancel")

    @property
    def can_run(self) -> bool:
        return bool(self.plan.targets) and not self.plan.readonly

    def on_mount(self) -> None:
        if self.can_run and self.plan.confirm_required:
            self.query_one("#confirm-count", Input).focus()
        else:
            self.query_one("#plan-body").focus()

    def action_confirm(self) -> None:
        if self.can_run and not self.plan.confirm_required:
            self.dismiss(True)

    def action_copy_az(self) -> None:
        self.app.copy_to_clipboard("\n".join(self.plan.az_commands))
        self.notify(f"Copied {len(self.plan.az_commands):,} az command(s) to the clipboard", markup=False)

    @on(Input.Submitted, "#confirm-count")
    def _typed(self, event: Input.Submitted) -> None:
        if self.plan.confirmed_by(event.value):
            self.dismiss(True)
            return
        self.query_one("#plan-error", Static).update(
            Content(f"Type exactly {self.plan.confirm_text} (the number of targets) to proceed, or esc."))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self.action_confirm()
        elif event.button.id == "copy":
            self.action_copy_az()
        elif event.button.id == "cancel":
            self.dismiss(False)


# ---- the app's side ----------------------------------------------------------------------------------


class ConsoleActions:
    """The action flow of one console: menu → form → plan → job, jobs on the session's engine, rows
    re-read when their target succeeds."""

    def __init__(self, app: WsamApp) -> None:
        self.app = app
        self.running: set[str] = set()  # job ids this console drives now
        self.ended: list[str] = []  # job ids this console drove to an end (or that stopped), in order
        self._row_slots = asyncio.Semaphore(ROW_REFRESHES)
        self._changed: list[tuple[str, str, dict | None, str]] = []  # (action, server id, resource, path)
        self._rows_due = False
        self._rows_busy = 0  # row workers under way
        self.stored = 0  # servers whose changed rows were written into the store

    @property
    def session(self):
        return self.app.session

    def start(self) -> None:
        """At mount: listen to the engine, and resume (or, read-only or offline, show) the jobs an earlier
        session left unfinished."""
        self.session.on_job_event = lambda event: self.app.post_message(JobUpdate(event))
        self.app.run_worker(self._resume_unfinished, thread=True, group="jobs-start", exit_on_error=False)

    def unavailable(self) -> str | None:
        """Why actions are not offered now, or None."""
        if self.session.info.readonly:
            return "Read-only mode: actions that write are not offered (--readonly or readonly = true in the config)."
        if self.session.offline:
            return "Offline (--offline): actions need ARM; the console shows the cache only."
        if self.app.connection_problem:
            return f"ARM is unreachable ({self.app.connection_problem}); r retries."
        return None

    def targets(self) -> list[Server]:
        """The marked servers, or the highlighted one when none is marked."""
        app = self.app
        ids = list(app.table.marks) or ([app.table.highlighted_id] if app.table.highlighted_id else [])
        return [app.by_id[i] for i in ids if i in app.by_id]

    # -- the flow

    def open_menu(self) -> None:
        reason = self.unavailable()
        if reason:
            self.app.notify(reason, title="Actions", severity="warning", markup=False)
            return
        servers = self.targets()
        if not servers:
            self.app.notify("Mark servers (space, a) or highlight one first.", severity="warning", markup=False)
            return
        servers.sort(key=lambda s: s.name.lower())

        def chosen(action_id: str | None) -> None:
            if action_id is None:
                return
            if action_id in NO_FORM:
                self.show_plan(action_id, {}, servers)
            elif action_id.startswith("monitor."):  # the form lists the rules the store knows: read off the UI loop
                self.app.run_worker(lambda: self._form_with_rules(action_id, servers), thread=True,
                                    group="action-form", exit_on_error=False)
            else:
                self._open_form(action_id, servers, [])

        self.app.push_screen(ActionMenu(servers), chosen)

    def _form_with_rules(self, action_id: str, servers: list[Server]) -> None:
        from ..depth import data_collection_rules  # the depth module loads after the first paint

        rules = data_collection_rules(self.session.inventory.store)
        self.app.call_from_thread(self._open_form, action_id, servers, rules)

    def _open_form(self, action_id: str, servers: list[Server], rules: list) -> None:
        self.app.push_screen(ActionForm(action_id, servers, rules, self.app.subscription_names),
                             lambda params: params is not None and self.show_plan(action_id, params, servers))

    def make_plan(self, action_id: str, params: Mapping[str, Any], servers: Sequence[Server]) -> Plan:
        settings = self.app.settings
        return plan(action_id, params, servers, readonly=self.session.info.readonly,
                    protected_subscriptions=settings.protected_subscriptions,
                    subscription_names=self.app.subscription_names)

    def show_plan(self, action_id: str, params: Mapping[str, Any], servers: Sequence[Server]) -> None:
        try:
            p = self.make_plan(action_id, params, servers)
        except ActionError as e:
            self.app.notify(clean_text(str(e)), title="Cannot plan", severity="error", markup=False)
            return
        secrets = secrets_for(action_id, params)

        def answer(yes: bool | None) -> None:
            if yes:
                self.run_job(p, secrets)

        self.app.push_screen(PlanScreen(p), answer)

    # -- jobs on the engine

    def run_job(self, p: Plan, secrets: Mapping[str, Any]) -> None:
        self.running.add(p.id)
        self.app.notify(f"Job {p.id} started: {len(p.targets):,} target(s). J shows it.", markup=False)
        self._drive(p.id, lambda engine: engine.run(p, secrets=secrets), f"Job {p.id}")

    def resume(self, job_id: str, secrets: Mapping[str, Any] | None = None) -> None:
        self.running.add(job_id)
        self._drive(job_id, lambda engine: engine.resume(job_id, secrets=secrets), f"Resuming job {job_id}")

    def retry_failed(self, job_id: str, secrets: Mapping[str, Any] | None = None) -> None:
        self.running.add(job_id)
        self._drive(job_id, lambda engine: engine.retry_failed(job_id, secrets=secrets), f"Retrying job {job_id}")

    def cancel(self, job_id: str) -> None:
        async def stop(engine) -> bool:
            return engine.cancel(job_id)

        async def cancel() -> None:
            if await self.session.with_engine(stop):
                self.app.notify(f"Job {job_id}: cancelling — nothing more is sent; what was sent is followed to "
                                "its end.", markup=False)

        self.app.run_worker(cancel(), group="job-cancel", exit_on_error=False)

    def _drive(self, job_id: str, work_, what: str) -> None:
        self.app.run_worker(self._drive_worker(job_id, work_, what), group="jobs", exit_on_error=False)

    async def _drive_worker(self, job_id: str, work_, what: str) -> None:
        app = self.app
        try:
            job = await self.session.with_engine(work_)
        except (ReadOnlyError, JobBusyError, ConnectFailed, ValueError, OSError) as e:
            app.notify(clean_text(f"{what}: {e}", limit=400), title="Job not run", severity="error", markup=False,
                       timeout=15)
        except Exception as e:  # the console stays up whatever the engine raised
            app.notify(clean_text(f"{what}: {type(e).__name__}: {e}", limit=400), title="Job failed",
                       severity="error", markup=False, timeout=15)
        else:
            counts = ", ".join(f"{n:,} {s}" for s, n in sorted(job.counts().items()))
            bad = any(t.state in RETRYABLE for t in job.targets.values())
            app.notify(clean_text(f"{what} ended: {counts}"), title=clean_text(job.title, limit=80),
                       severity="warning" if bad else "information", markup=False, timeout=10)
        finally:
            self.running.discard(job_id)
            self.ended.append(job_id)
            app.post_message(JobEnded(job_id))

    # -- events

    def on_job_update(self, event: JobEvent) -> None:
        from .jobs import JobsScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, JobsScreen):
                screen.job_changed(event.job_id)
        if event.state == "succeeded" and not self.session.offline:
            job = self.session.live_job(event.job_id)
            target = job.targets.get(event.target_id.lower()) if job is not None else None
            if job is not None and target is not None and job.action != "run-command":  # a script changes no cell
                self._changed.append((job.action, event.target_id, event.resource, target.call.resource_path,
                                      f"job {job.id}: {clean_text(job.title, limit=60)}"))
                if not self._rows_due:  # gathered for a moment, then applied together: one repaint for many
                    self._rows_due = True
                    self.app.set_timer(ROW_BATCH_S, self._apply_changed)

    def on_job_ended(self, job_id: str) -> None:
        from .jobs import JobsScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, JobsScreen):
                screen.job_changed(job_id)
        self._store_when_idle()

    def _store_when_idle(self) -> None:
        """The changed rows into the store once no job runs and every row waiting is applied."""
        if not self.running and not self._changed and not self._rows_due and not self._rows_busy:
            self.app.run_worker(self._store_changed_worker, thread=True, group="job-store", exit_on_error=False)

    def _apply_changed(self) -> None:
        self._rows_due = False
        batch, self._changed = self._changed, []
        if batch:
            self.app.run_worker(self._rows_worker(batch), group="job-rows", exit_on_error=False)

    async def _rows_worker(self, batch: list[tuple[str, str, dict | None, str, str]]) -> None:
        """The servers' new rows from what the engine re-read after each success (at most one more read
        where the action's cells need it), derived over the cached rows in a thread, applied in one go."""
        from ..depth import action_effect, record_effects

        app = self.app

        async def effect(action_id: str, server_id: str, resource: dict | None, path: str, by: str):
            async with self._row_slots:
                try:
                    found = await self.session.call(
                        lambda conn: action_effect(conn.transport, action_id, server_id, resource, path))
                except (ConnectFailed, ArmHttpError):
                    return None  # the next refresh shows it; the job's own state is what matters here
                return dataclasses.replace(found, by=by) if found is not None else None

        self._rows_busy += 1
        try:
            effects = [e for e in await asyncio.gather(*(effect(*item) for item in batch)) if e is not None]
            if effects:
                servers = await asyncio.to_thread(record_effects, self.session.inventory, effects, now=app.clock())
                self.apply_rows(servers)
        finally:
            self._rows_busy -= 1
        self._store_when_idle()

    def apply_rows(self, servers: Sequence[Server]) -> None:
        """Changed servers everywhere the console keeps them: the records, the table's rows, the index behind
        the filter and the gap view (a server whose gap closed leaves ``missing:…``), the header's counts."""
        app = self.app
        if not servers:
            return
        for server in servers:
            if server.id in app.by_id:
                app.by_id[server.id] = server
        app.table.update_rows(servers)
        if app.index is not None:
            app.index.update(servers)
            app._apply_view()

    def _store_changed_worker(self) -> None:
        """What actions changed, into the store (``--offline`` and the next start show it) and the saved rows."""
        from ..depth import store_effects
        from .rowcache import save_rows

        app = self.app
        written = store_effects(self.session.inventory)
        if not written or app.snapshot is None:
            return
        self.stored += written
        meta = {"subscriptions": app.snapshot.subscriptions, "names": app.subscription_names,
                "fingerprint": app._fingerprint(app.snapshot),
                "oldest": app.snapshot.oldest.isoformat() if app.snapshot.oldest else None}
        with contextlib.suppress(OSError):  # only a faster next start is lost; the store holds the change
            save_rows(app.session.inventory.store.directory, app.table._data, app.servers, meta)  # rows as updated

    # -- start

    def _resume_unfinished(self) -> None:
        """Jobs an earlier session left unfinished (and no other process drives) are resumed when this console
        may write: the engine tracks what ARM accepted, asks ARM about what was in doubt and sends only what
        never left. Targets not yet sent that need protected values (never stored) end failed, saying so;
        retrying them asks for the values. Read-only or offline, the jobs are only shown."""
        journal = self.session.journal
        waiting = [j for j in journal.unfinished() if not journal.busy(j.id)]
        if not waiting:
            return
        names = "; ".join(f"{clean_text(j.title, limit=50)} ({j.id})" for j in waiting[:3])
        more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        reason = self.unavailable()
        if reason is not None:
            self.app.call_from_thread(
                self.app.notify, f"{len(waiting)} unfinished job(s) from an earlier session: {names}{more}. "
                f"Not resumed: {reason} J opens the jobs pane.", title="Unfinished jobs", severity="warning",
                markup=False, timeout=20)
            return
        secret = [j for j in waiting if j.secret_names]
        note = (f" {len(secret)} of them need protected values again (never stored) for targets not yet sent: those "
                "targets end failed, and f in the jobs pane retries them, asking for the values.") if secret else ""
        self.app.call_from_thread(
            self.app.notify, f"Resuming {len(waiting)} unfinished job(s) from an earlier session: {names}{more}. "
            f"J shows them.{note}", title="Unfinished jobs", markup=False, timeout=20)
        for job in waiting:
            self.app.call_from_thread(self.resume, job.id)

