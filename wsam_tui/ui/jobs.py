"""The jobs pane (J): every job of the journal and the ones running now, per-target states, progress,
elapsed time and retries; Run Command outputs grouped by identical output, each group expandable to its
servers. Keys: c cancel (stop sending; what was sent is followed), f retry the failed targets, r resume an
unfinished job (after a crash or a closed console), esc back.

Live jobs are read from the session's engine (the record it updates); others from the journal, replayed
in a thread. Redrawn at most four times a second however fast the events come.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Collapsible, Footer, Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from ..fleet.model import clean_text
from ..ops.engine import OUTPUT_LIMIT, OutputGroup, group_outputs
from ..ops.journal import RETRYABLE, JobRecord

if TYPE_CHECKING:
    from .app import WsamApp

SHOWN_TARGETS = 500  # target lines drawn per job (failures first); the journal keeps them all
ORDER = {"failed": 0, "in-doubt": 0, "running": 1, "waiting-for-throttle": 2, "queued": 3, "cancelled": 4,
         "succeeded": 5}
STYLE = {"failed": "bold $error", "in-doubt": "bold $warning", "running": "$accent", "waiting-for-throttle": "$warning", "queued": "$text-muted",
         "cancelled": "$warning", "succeeded": "$success", "skipped": "$text-muted"}


def _when(stamp: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def elapsed(job: JobRecord, now: datetime, live: bool) -> str:
    """From the job's creation to its end (the last target's end), or to now while it runs."""
    start = _when(job.created)
    if start is None:
        return "?"
    if live and job.unfinished:
        end = now
    else:
        ends = [e for e in (_when(t.ended) for t in job.targets.values()) if e is not None]
        end = _when(job.finished) or (max(ends) if ends else start)
    seconds = max(0, int((end - start).total_seconds()))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def status_of(job: JobRecord, live: bool, busy: bool) -> str:
    if live and job.unfinished:
        return "running"
    if job.unfinished:
        return "running in another process" if busy else "unfinished: r resumes"
    return "cancelled" if job.cancelled else "finished"


def counts_text(job: JobRecord) -> str:
    counts = job.counts()
    return ", ".join(f"{counts[s]:,} {s}" for s in sorted(counts, key=lambda s: ORDER.get(s, 9)))


def group_title(g: OutputGroup) -> Content:
    """ "212 servers: Running" — the group's first output line, literally."""
    first = next((line.strip() for line in g.stdout.splitlines() if line.strip()), "(no output)")
    parts = [Content.styled(f"{g.count:,} server{'s' * (g.count != 1)}", "bold"), Content(": "),
             Content(clean_text(first, limit=48))]
    parts.append(Content.styled(f"  exit code {g.exit_code if g.exit_code is not None else '?'}",
                                "$error" if g.exit_code not in (0, None) else "$text-muted"))
    if g.stderr.strip():
        parts.append(Content.styled("  stderr", "$error"))
    if g.truncated:
        parts.append(Content.styled(f"  [truncated at {OUTPUT_LIMIT:,} bytes]", "$warning"))
    return Content("").join(parts)


def group_body(g: OutputGroup) -> Content:
    parts = [Content.styled("servers: ", "bold"), Content(", ".join(clean_text(n) for n in g.targets)),
             Content.styled("\nstdout:\n", "bold"), Content(clean_text(g.stdout, keep_newlines=True) or "(none)")]
    if g.stderr.strip():
        parts += [Content.styled("\nstderr:\n", "bold $error"), Content(clean_text(g.stderr, keep_newlines=True))]
    if g.truncated:
        parts.append(Content.styled(f"\nRun Command keeps the last {OUTPUT_LIMIT:,} bytes of each stream: the start "
                                    "of this output is cut.", "$warning"))
    return Content("").join(parts)


def targets_content(job: JobRecord) -> Content:
    rows = sorted(job.targets.values(), key=lambda t: (ORDER.get(t.state, 9), t.target.name.lower()))
    lines: list[Content] = []
    for t in rows[:SHOWN_TARGETS]:
        detail = f"{t.code}: {t.message}" if t.code else t.message
        retries = f"  retries {t.retries}" if t.retries else ""
        lines.append(Content.assemble(("  " + clean_text(t.target.name), "bold"), "  ",
                                      (t.state, STYLE.get(t.state, "")), retries,
                                      ("  " + clean_text(detail, limit=300)) if detail else ""))
    if len(rows) > SHOWN_TARGETS:
        lines.append(Content.styled(f"  … and {len(rows) - SHOWN_TARGETS:,} more", "$text-muted"))
    for target, reason in job.skipped[:SHOWN_TARGETS]:
        lines.append(Content.assemble(("  " + clean_text(target.name), "bold"), "  ", ("skipped", STYLE["skipped"]),
                                      "  " + clean_text(reason)))
    if len(job.skipped) > SHOWN_TARGETS:
        lines.append(Content.styled(f"  … and {len(job.skipped) - SHOWN_TARGETS:,} more skipped", "$text-muted"))
    return Content("\n").join(lines)


class SecretsScreen(ModalScreen[dict | None]):
    """The protected values a job needs to send again (never stored: asked each time)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    SecretsScreen { align: center middle; }
    SecretsScreen > Vertical { width: 70; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    """

    def __init__(self, job: JobRecord) -> None:
        super().__init__()
        self.job = job
        self.names = [clean_text(n) for n in job.params.get("protected_parameters") or []] \
            if "protected_parameters" in job.secret_names else []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content("This job needs its protected values again (they are never stored). "
                                 "Enter submits, esc cancels."))
            for i, name in enumerate(self.names):
                yield Label(Content(f"Protected parameter {name}"))
                yield Input(id=f"secret-{i}", password=True)
            if "protected_settings" in self.job.secret_names:
                yield Label("Protected settings (JSON)")
                yield Input(id="secret-settings", password=True)
            yield Button("Continue", id="secrets-ok", variant="warning")

    @on(Input.Submitted)
    @on(Button.Pressed, "#secrets-ok")
    def _done(self) -> None:
        import json

        secrets: dict = {}
        if self.names:
            secrets["protected_parameters"] = {n: self.query_one(f"#secret-{i}", Input).value
                                               for i, n in enumerate(self.names)}
        if "protected_settings" in self.job.secret_names:
            try:
                value = json.loads(self.query_one("#secret-settings", Input).value or "{}")
            except ValueError:
                self.notify("Protected settings: not JSON", severity="error", markup=False)
                return
            secrets["protected_settings"] = value if isinstance(value, dict) else {}
        self.dismiss(secrets)


class JobsScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,J", "app.pop_screen", "Back", id="jobs.back"),
        Binding("c", "cancel_job", "Cancel job", id="jobs.cancel"),
        Binding("f", "retry_failed", "Retry failed", id="jobs.retry_failed"),
        Binding("r", "resume_job", "Resume", id="jobs.resume"),
        Binding("e", "expand_all", "Expand outputs", id="jobs.expand"),
    ]
    DEFAULT_CSS = """
    JobsScreen { layout: vertical; }
    JobsScreen #jobs-main { height: 1fr; }
    JobsScreen #job-list { width: 40%; min-width: 30; height: 1fr; }
    JobsScreen #job-detail { width: 1fr; height: 1fr; padding: 0 1; }
    JobsScreen #job-progress { margin: 1 0; }
    JobsScreen #job-outputs-title { margin-top: 1; }
    JobsScreen Collapsible { height: auto; }
    """

    def __init__(self, focus_job: str | None = None) -> None:
        super().__init__()
        self.jobs: dict[str, JobRecord] = {}  # from the journal (replayed)
        self.busy: set[str] = set()
        self.selected: str | None = focus_job
        self._dirty = True
        self._groups_key: tuple = ()

    @property
    def wsam(self) -> WsamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(Content.styled("Jobs", "bold"), id="jobs-title")
        with Horizontal(id="jobs-main"):
            yield OptionList(id="job-list", markup=False)
            with VerticalScroll(id="job-detail"):
                yield Static(Content("No job chosen"), id="job-head")
                yield ProgressBar(id="job-progress", show_eta=False)
                yield Static(Content(""), id="job-targets")
                yield Static(Content(""), id="job-outputs-title")
                yield Vertical(id="job-outputs")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.reload()
        self.set_interval(0.25, self._tick)

    # -- data

    def reload(self) -> None:
        """Replay the journal in a thread (a job of 2,000 targets is a few thousand lines)."""
        self.run_worker(self._read_journal, thread=True, group="jobs-read", exclusive=True, exit_on_error=False)

    def _read_journal(self) -> None:
        journal = self.wsam.session.journal
        jobs = {j.id: j for j in journal.jobs()}
        busy = {j.id for j in jobs.values() if j.unfinished and journal.busy(j.id)}
        self.app.call_from_thread(self._loaded, jobs, busy)

    def _loaded(self, jobs: dict[str, JobRecord], busy: set[str]) -> None:
        self.jobs, self.busy = jobs, busy
        self._dirty = True
        self._tick()

    def record(self, job_id: str) -> tuple[JobRecord | None, bool]:
        """(the job's record, whether this console's engine drives or drove it)."""
        live = self.wsam.session.live_job(job_id)
        return (live, True) if live is not None else (self.jobs.get(job_id), False)

    def job_ids(self) -> list[str]:
        ids = list(self.jobs)
        for job_id in self.wsam.ops.running:
            if job_id not in self.jobs:
                ids.append(job_id)
        return list(reversed(ids))  # newest first

    def job_changed(self, job_id: str) -> None:
        if job_id not in self.jobs and self.wsam.session.live_job(job_id) is None:
            self.reload()
        self._dirty = True

    # -- drawing

    def _tick(self) -> None:
        selected = self.selected
        record, live = self.record(selected) if selected else (None, False)
        if not self._dirty and not (live and record is not None and record.unfinished):
            return
        self._dirty = False
        self._draw_list()
        self._draw_job()

    def _draw_list(self) -> None:
        menu = self.query_one("#job-list", OptionList)
        options = []
        for job_id in self.job_ids():
            job, live = self.record(job_id)
            if job is None:
                continue
            status = status_of(job, (live and job.unfinished) or job_id in self.wsam.ops.running,
                               job_id in self.busy)
            label = Content.assemble((clean_text(job.title, limit=60), "bold"), f"  [{job.action}]\n",
                                     (f"  {status}", "$warning" if "unfinished" in status else "$text-muted"),
                                     f" · {counts_text(job)}")
            options.append(Option(label, id=job_id))
        highlighted = menu.highlighted_option.id if menu.highlighted_option else None
        menu.set_options(options)
        if not options:
            return
        ids = [o.id for o in options]
        want = self.selected if self.selected in ids else highlighted if highlighted in ids else ids[0]
        menu.highlighted = ids.index(want)
        self.selected = want

    @on(OptionList.OptionHighlighted, "#job-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id != self.selected:
            self.selected = event.option.id
            self._groups_key = ()
            self._draw_job()

    def _draw_job(self) -> None:
        head = self.query_one("#job-head", Static)
        job, live = self.record(self.selected) if self.selected else (None, False)
        if job is None:
            head.update(Content("No jobs yet: mark servers and press o to act on them."))
            self.query_one("#job-targets", Static).update(Content(""))
            self.query_one("#job-progress", ProgressBar).update(total=None, progress=0)
            return
        running = (live and job.unfinished) or job.id in self.wsam.ops.running
        done = sum(1 for t in job.targets.values() if t.done)
        retries = sum(t.retries for t in job.targets.values())
        status = status_of(job, running, job.id in self.busy)
        lines = [
            Content.assemble((clean_text(job.title), "bold"), f"  [{job.action}]  job {job.id}"),
            Content(f"by {clean_text(job.principal)} · created {job.created} · elapsed "
                    f"{elapsed(job, datetime.now(UTC), running)} · {status}"),
            Content(f"{done:,} of {len(job.targets):,} ended · {counts_text(job)} · {retries:,} retries"),
        ]
        lines += [Content.styled(f"journal: {clean_text(p)}", "$warning") for p in job.problems[:3]]
        keys = ["c cancel" if running and job.unfinished else "",
                "f retry failed" if not running and any(t.state in RETRYABLE for t in job.targets.values())
                else "", "r resume" if status.startswith("unfinished") else "", "esc back"]
        lines.append(Content.styled(" · ".join(k for k in keys if k), "$text-muted"))
        head.update(Content("\n").join(lines))
        self.query_one("#job-progress", ProgressBar).update(total=max(1, len(job.targets)), progress=done)
        self.query_one("#job-targets", Static).update(targets_content(job))
        self._draw_outputs(job)

    def _draw_outputs(self, job: JobRecord) -> None:
        groups = group_outputs(job) if job.action == "run-command" else []
        key = (job.id, tuple((g.stdout, g.stderr, g.exit_code, g.count) for g in groups))
        if key == self._groups_key:
            return
        self._groups_key = key
        box = self.query_one("#job-outputs", Vertical)
        expanded = {c.id for c in box.query(Collapsible) if not c.collapsed}
        box.remove_children()
        title = self.query_one("#job-outputs-title", Static)
        if not groups:
            title.update(Content(""))
            return
        total = sum(g.count for g in groups)
        title.update(Content.styled(f"Outputs: {len(groups)} distinct among {total:,} servers "
                                    "(enter on a group, or e, shows its servers)", "bold"))
        box.mount_all(Collapsible(Static(group_body(g)), title=group_title(g),  # type: ignore[arg-type]
                                  collapsed=f"group-{i}" not in expanded, id=f"group-{i}")
                      for i, g in enumerate(groups))

    # -- keys

    def _job(self) -> tuple[JobRecord | None, bool]:
        return self.record(self.selected) if self.selected else (None, False)

    def _refuse(self) -> bool:
        reason = self.wsam.ops.unavailable()
        if reason:
            self.notify(reason, severity="warning", markup=False)
        return bool(reason)

    def action_cancel_job(self) -> None:
        job, live = self._job()
        if job is None or not (live and job.unfinished):
            self.notify("Only a job running in this console can be cancelled.", markup=False)
            return
        self.wsam.ops.cancel(job.id)

    def action_retry_failed(self) -> None:
        job, _ = self._job()
        if job is None or self._refuse():
            return
        if job.id in self.wsam.ops.running or job.unfinished:
            self.notify("This job has not ended yet (r resumes an unfinished job).", markup=False)
            return
        if not any(t.state in RETRYABLE for t in job.targets.values()):
            self.notify("No failed, cancelled or in-doubt target to retry.", markup=False)
            return
        self._with_secrets(job, self.wsam.ops.retry_failed)

    def action_resume_job(self) -> None:
        job, _ = self._job()
        if job is None or self._refuse():
            return
        if not job.unfinished or job.id in self.wsam.ops.running:
            self.notify("Only an unfinished job that is not running can be resumed.", markup=False)
            return
        self._with_secrets(job, self.wsam.ops.resume)

    def _with_secrets(self, job: JobRecord, go) -> None:
        if not job.secret_names:
            go(job.id)
            self._dirty = True
            return

        def given(secrets: dict | None) -> None:
            if secrets is not None:
                go(job.id, secrets)
                self._dirty = True

        self.app.push_screen(SecretsScreen(job), given)

    def action_expand_all(self) -> None:
        groups = list(self.query("#job-outputs Collapsible").results(Collapsible))
        expand = any(c.collapsed for c in groups)
        for c in groups:
            c.collapsed = not expand
