"""An unexpected exception in a widget, a timer, a worker or a message handler does not end the console: a
job may be running, and an operator who loses the console mid-job stops trusting it. The fault is written
with its traceback to ``errors.log`` in the private state directory (0600) and shown in a notification;
the console and its jobs go on.

Textual ends the app on any such exception: every message loop, timer, worker and the compositor hand it to
``App._handle_exception``, which exits. ``WsamApp`` overrides that one hook to report the fault instead (once
the console is up; a failure while starting still ends it with the traceback). A message loop that saw an
exception also stops for good (``MessagePump._process_messages_loop`` breaks after reporting it): the app and
the screens that carry live work (``KeepRunning``) catch what their own handlers raise, so their loops go on,
and report their workers that fail without ending the app (``exit_on_error=False``: Textual keeps quiet).
"""

from __future__ import annotations

import os
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message
from textual.worker import Worker, WorkerFailed, WorkerState

from ..config import state_dir
from ..fleet.model import clean_text

if TYPE_CHECKING:
    from textual.app import App

LOGGED_MAX = 100  # tracebacks written per session: a fault repeated every frame must not fill the disk
QUIET_S = 10.0  # the same fault again within this many seconds is counted, not notified again


def log_path() -> Path:
    return state_dir() / "errors.log"


class FaultReporter:
    """Logs and notifies the faults of one app."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or log_path()
        self.count = 0
        self._last_shown: dict[str, float] = {}
        self._reporting = False

    def report(self, app: App, error: BaseException) -> None:
        if isinstance(error, WorkerFailed) and error.error is not None:
            error = error.error  # the worker's own exception and its traceback
        if self._reporting:  # the notification itself failed: the log has it
            return
        self._reporting = True
        try:
            self.count += 1
            logged = self._write(error) if self.count <= LOGGED_MAX else None
            what = clean_text(f"{type(error).__name__}: {error}", limit=300)
            now = time.monotonic()
            if now - self._last_shown.get(what, -QUIET_S) < QUIET_S:
                return
            self._last_shown[what] = now
            where = f"The traceback is in {logged}." if logged else "It could not be logged."
            app.notify(f"{what}\nThe console and its jobs go on. {where}", title="Unexpected error",
                       severity="error", markup=False, timeout=20)
        finally:
            self._reporting = False

    def _write(self, error: BaseException) -> Path | None:
        """Append the traceback; the directory 0700 and the file 0600 (a traceback names servers and paths)."""
        text = "".join(traceback.format_exception(error))
        entry = f"--- {datetime.now(UTC).isoformat(timespec='seconds')} ---\n{text}\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, entry.encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError:
            return None
        return self.path


class KeepRunning:
    """Mixed into the app and its long-lived screens: an exception in one of their handlers is reported, and
    their message loop goes on (Textual's would stop)."""

    async def _dispatch_message(self, message: Message) -> None:
        try:
            await super()._dispatch_message(message)  # type: ignore[misc]
        except Exception as error:
            self.app._handle_exception(error)  # type: ignore[attr-defined]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A worker that does not end the app (``exit_on_error=False``) failed: shown, not lost. A handler that
        says so itself calls ``event.prevent_default()``."""
        report = getattr(self.app, "report_fault", None)  # type: ignore[attr-defined]
        if event.state is WorkerState.ERROR and isinstance(event.worker.error, Exception) and report is not None:
            report(event.worker.error)
