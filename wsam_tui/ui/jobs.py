"""The jobs pane (J): every job of the journal and the ones running now, per-target states, progress,
elapsed time and retries; Run Command outputs grouped by identical output, one line per group titled by
where it differs from the others; enter opens a group in full with its servers (OutputScreen), w writes
every group to a file. Keys: c cancel (stop sending; what was sent is followed), f retry the failed
targets, r resume an unfinished job (after a crash or a closed console), e the output groups, esc back.

Live jobs are read from the session's engine (the record it updates); others from the journal, replayed
in a thread. Redrawn at most four times a second however fast the events come.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, OptionList, ProgressBar, Static
from textual.widgets.option_list import Option

from ..fleet.model import clean_text
from ..ops.engine import OUTPUT_LIMIT, OutputGroup, group_outputs
from ..ops.journal import RETRYABLE, JobRecord
from .faults import KeepRunning

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


def distinct_lines(groups: list[OutputGroup]) -> list[tuple[int, str] | None]:
    """For each group, the first output line at which it differs from every other group, with its line number
    (blank lines skipped): a header every server prints ("Status  Name  DisplayName") tells nothing apart.
    None when the group's output is the start of another's, or the same (its stderr or exit code differ)."""
    lines = [[(n, s.strip()) for n, s in enumerate(g.stdout.splitlines(), 1) if s.strip()] for g in groups]
    texts = [tuple(s for _, s in found) for found in lines]
    shared = [0] * len(groups)  # leading lines shared with the most similar other group
    order = sorted(range(len(groups)), key=lambda i: texts[i])
    for a, b in itertools.pairwise(order):  # sorted: the most similar group is a neighbour
        n = 0
        while n < min(len(texts[a]), len(texts[b])) and texts[a][n] == texts[b][n]:
            n += 1
        shared[a], shared[b] = max(shared[a], n), max(shared[b], n)
    return [found[k] if k < len(found) else None for found, k in zip(lines, shared, strict=True)]


def digest(g: OutputGroup) -> str:
    """Four hex digits of the group's output: two groups whose shown lines look alike still read apart."""
    return hashlib.sha256(f"{g.stdout}\0{g.stderr}\0{g.exit_code}".encode()).hexdigest()[:4]


def group_title(g: OutputGroup, line: tuple[int, str] | None = None) -> Content:
    """ "212 servers: Running  exit code 0  1 line  #3fa2" — ``line`` is where the group differs from the
    others (distinct_lines), else its first output line; literally."""
    if line is None or line[0] == 1:
        first = next((s.strip() for s in g.stdout.splitlines() if s.strip()), "(no output)")
        shown = Content(clean_text(first, limit=60))
    else:
        shown = Content.styled(f"line {line[0]}: ", "$text-muted") + Content(clean_text(line[1], limit=60))
    parts = [Content.styled(f"{g.count:,} server{'s' * (g.count != 1)}", "bold"), Content(": "), shown]
    parts.append(Content.styled(f"  exit code {g.exit_code if g.exit_code is not None else '?'}",
                                "$error" if g.exit_code not in (0, None) else "$text-muted"))
    if g.stderr.strip():
        parts.append(Content.styled("  stderr", "$error"))
    if g.truncated:
        parts.append(Content.styled(f"  [truncated at {OUTPUT_LIMIT:,} bytes]", "$warning"))
    count = len(g.stdout.splitlines())
    parts.append(Content.styled(f"  {count:,} line{'s' * (count != 1)}  #{digest(g)}", "$text-muted"))
    return Content("").join(parts)


def group_body(g: OutputGroup) -> Content:
    """The pager's text: the whole output (as Run Command kept it), then every server of the group."""
    parts = [Content.styled("stdout:\n", "bold"), Content(clean_text(g.stdout, keep_newlines=True) or "(none)")]
    if g.stderr.strip():
        parts += [Content.styled("\n\nstderr:\n", "bold $error"), Content(clean_text(g.stderr, keep_newlines=True))]
    if g.truncated:
        parts.append(Content.styled(f"\n\nRun Command keeps the last {OUTPUT_LIMIT:,} bytes of each stream: the "
                                    "start of this output is cut.", "$warning"))
    parts += [Content.styled(f"\n\nservers ({g.count:,}):\n", "bold"),
              Content("\n".join(clean_text(n) for n in g.targets))]
    return Content("").join(parts)


def outputs_text(job: JobRecord, groups: list[OutputGroup], written: datetime) -> str:
    """Every group of a job as a text file: its servers, stdout and stderr (controls as markers: the file
    is read in a terminal too)."""
    total = sum(g.count for g in groups)
    out = [f"Job {job.id}: {clean_text(job.title)} [{job.action}]",
           f"{len(groups):,} distinct outputs among {total:,} servers; written {written.isoformat(timespec='seconds')}"]
    for i, g in enumerate(groups, 1):
        cut = f", truncated at {OUTPUT_LIMIT:,} bytes" if g.truncated else ""
        out += ["", f"=== Group {i} of {len(groups)}: {g.count:,} server{'s' * (g.count != 1)}, "
                    f"exit code {g.exit_code if g.exit_code is not None else '?'}{cut} (#{digest(g)}) ===",
                "servers:", *(f"  {clean_text(n)}" for n in g.targets),
                "--- stdout ---", clean_text(g.stdout, keep_newlines=True)]
        if g.stderr.strip():
            out += ["--- stderr ---", clean_text(g.stderr, keep_newlines=True)]
    return "\n".join(out) + "\n"


def outputs_json(job: JobRecord, groups: list[OutputGroup]) -> str:
    """The same as JSON (raw text: JSON escapes the controls)."""
    return json.dumps({"job": job.id, "title": job.title, "action": job.action, "groups": [
        {"servers": list(g.targets), "count": g.count, "exitCode": g.exit_code, "stdout": g.stdout,
         "stderr": g.stderr, "truncated": g.truncated} for g in groups]}, indent=2, ensure_ascii=False) + "\n"


def write_private(path: Path, text: str) -> None:
    """Outputs can say anything about a server: the file is the operator's only (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


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


class PathPrompt(ModalScreen[Path | None]):
    """Where to write a file: the default path, editable; enter writes, esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    PathPrompt { align: center middle; }
    PathPrompt > Vertical { width: 90; height: auto; border: thick $accent; background: $surface; padding: 1 2; }
    """

    def __init__(self, question: str, default: Path) -> None:
        super().__init__()
        self.question, self.default = question, default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content(f"{self.question} (a name ending in .json writes JSON). Enter writes, esc cancels."))
            yield Input(str(self.default), id="path-input")

    def on_mount(self) -> None:
        field = self.query_one("#path-input", Input)
        field.focus()
        field.cursor_position = len(field.value)

    @on(Input.Submitted)
    def _done(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        self.dismiss(Path(text).expanduser() if text else None)


class OutputScreen(KeepRunning, Screen):
    """One output group in full, scrollable: stdout, stderr and every server. n / p: the next and previous
    group; w writes every group to a file; esc back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="output.back"),
        Binding("n", "step(1)", "Next group", id="output.next"),
        Binding("p", "step(-1)", "Previous group", id="output.previous"),
        Binding("w", "write", "Write to a file", id="output.write"),
    ]
    DEFAULT_CSS = """
    OutputScreen { layout: vertical; }
    OutputScreen #output-head { height: auto; padding: 0 1; background: $panel; }
    OutputScreen #output-scroll { height: 1fr; padding: 0 1; }
    """

    def __init__(self, jobs: JobsScreen, job: JobRecord, groups: list[OutputGroup], index: int) -> None:
        super().__init__()
        self.jobs, self.job, self.groups, self.index = jobs, job, groups, index
        self.lines = distinct_lines(groups)

    def compose(self) -> ComposeResult:
        yield Static(Content(""), id="output-head")
        with VerticalScroll(id="output-scroll"):
            yield Static(Content(""), id="output-body")
        yield Footer()

    def on_mount(self) -> None:
        self._show()
        self.query_one("#output-scroll").focus()

    def _show(self) -> None:
        g = self.groups[self.index]
        head = Content.assemble((f"Output group {self.index + 1} of {len(self.groups)}", "bold"),
                                f"  ·  job {self.job.id}: ", clean_text(self.job.title, limit=60), "\n")
        self.query_one("#output-head", Static).update(head + group_title(g, self.lines[self.index]))
        self.query_one("#output-body", Static).update(group_body(g))
        self.query_one("#output-scroll", VerticalScroll).scroll_home(animate=False)

    def action_step(self, step: int) -> None:
        self.index = (self.index + step) % len(self.groups)
        self._show()

    def action_write(self) -> None:
        self.jobs.write_outputs(self.job, self.groups)


class JobsScreen(KeepRunning, Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,J", "app.pop_screen", "Back", id="jobs.back"),
        Binding("c", "cancel_job", "Cancel job", id="jobs.cancel"),
        Binding("f", "retry_failed", "Retry failed", id="jobs.retry_failed"),
        Binding("r", "resume_job", "Resume", id="jobs.resume"),
        Binding("e", "outputs", "Outputs", id="jobs.outputs"),
        Binding("w", "write_outputs", "Write outputs", id="jobs.write_outputs"),
    ]
    DEFAULT_CSS = """
    JobsScreen { layout: vertical; }
    JobsScreen #jobs-main { height: 1fr; }
    JobsScreen #job-list { width: 40%; min-width: 30; height: 1fr; }
    JobsScreen #job-detail { width: 1fr; height: 1fr; padding: 0 1; }
    JobsScreen #job-progress { margin: 1 0; }
    JobsScreen #job-outputs-title { margin-top: 1; }
    /* every group one line, scrolled by keys and the wheel; the targets take what is left */
    JobsScreen #job-outputs { height: auto; max-height: 50%; display: none; }
    JobsScreen #job-outputs.-shown { display: block; }
    JobsScreen #job-targets-scroll { height: 1fr; min-height: 5; }
    """

    def __init__(self, focus_job: str | None = None) -> None:
        super().__init__()
        self.jobs: dict[str, JobRecord] = {}  # from the journal (replayed)
        self.busy: set[str] = set()
        self.selected: str | None = focus_job
        self._dirty = True
        self._groups_key: tuple = ()
        self.groups: list[OutputGroup] = []  # the chosen job's output groups, as listed

    @property
    def wsam(self) -> WsamApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(Content.styled("Jobs", "bold"), id="jobs-title")
        with Horizontal(id="jobs-main"):
            yield OptionList(id="job-list", markup=False)
            with Vertical(id="job-detail"):
                yield Static(Content("No job chosen"), id="job-head")
                yield ProgressBar(id="job-progress", show_eta=False)
                yield Static(Content(""), id="job-outputs-title")
                yield OptionList(id="job-outputs", markup=False)
                with VerticalScroll(id="job-targets-scroll"):
                    yield Static(Content(""), id="job-targets")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#job-list", OptionList).focus()
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
        """The output groups, one line each. Redrawn in place (set_options): nothing is mounted, so two
        redraws close together cannot collide (mounting groups while the last ones were still being removed
        raised DuplicateIds and ended the console mid-job)."""
        groups = group_outputs(job) if job.action == "run-command" else []
        key = (job.id, tuple((g.stdout, g.stderr, g.exit_code, g.count) for g in groups))
        if key == self._groups_key:
            return
        self._groups_key = key
        box = self.query_one("#job-outputs", OptionList)
        title = self.query_one("#job-outputs-title", Static)
        was = self.groups[box.highlighted] if box.highlighted is not None and box.highlighted < len(self.groups) else None
        self.groups = groups
        box.set_class(bool(groups), "-shown")
        if not groups:
            title.update(Content(""))
            box.clear_options()
            return
        total = sum(g.count for g in groups)
        title.update(Content.assemble((f"Outputs: {len(groups):,} distinct among {total:,} servers", "bold"),
                                      ("  e or tab: to the groups · enter: a group in full, with its servers · "
                                       "w: write them all to a file", "$text-muted")))
        box.set_options([Option(group_title(g, line)) for g, line in zip(groups, distinct_lines(groups), strict=True)])
        same = [i for i, g in enumerate(groups) if was is not None and (g.stdout, g.stderr, g.exit_code) ==
                (was.stdout, was.stderr, was.exit_code)]
        box.highlighted = same[0] if same else 0

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

    def action_outputs(self) -> None:
        if not self.groups:
            self.notify("This job has no Run Command outputs.", markup=False)
            return
        self.query_one("#job-outputs", OptionList).focus()

    @on(OptionList.OptionSelected, "#job-outputs")
    def _open_group(self, event: OptionList.OptionSelected) -> None:
        job, _ = self._job()
        if job is not None and event.option_index < len(self.groups):
            self.app.push_screen(OutputScreen(self, job, self.groups, event.option_index))

    def action_write_outputs(self) -> None:
        job, _ = self._job()
        if job is None or not self.groups:
            self.notify("This job has no Run Command outputs to write.", markup=False)
            return
        self.write_outputs(job, self.groups)

    def write_outputs(self, job: JobRecord, groups: list[OutputGroup]) -> None:
        """Ask where (the default: the current directory, named after the job), write in a thread, say where."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        default = Path.cwd() / f"wsam-job-{job.id}-outputs-{stamp}.txt"

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.app.run_worker(lambda: self._write(path, job, list(groups)), thread=True, group="job-outputs",
                                    exit_on_error=False)

        self.app.push_screen(PathPrompt(f"Write the {len(groups):,} output groups of job {job.id} to", default),
                             chosen)

    def _write(self, path: Path, job: JobRecord, groups: list[OutputGroup]) -> None:
        text = outputs_json(job, groups) if path.suffix.lower() == ".json" else \
            outputs_text(job, groups, datetime.now(UTC))
        try:
            write_private(path, text)
        except OSError as e:
            self.app.call_from_thread(self.app.notify, clean_text(f"Cannot write {path}: {e.strerror or e}"),
                                      severity="error", markup=False)
            return
        servers = sum(g.count for g in groups)
        self.app.call_from_thread(self.app.notify, clean_text(
            f"Wrote {len(groups):,} output groups ({servers:,} servers) to {path}"), markup=False, timeout=10)
