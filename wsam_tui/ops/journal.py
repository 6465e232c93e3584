"""The job journal: one append-only JSON Lines file per job under the state dir (``jobs/<id>.jsonl``).

Why JSON Lines and not sqlite/diskcache: a job is a sequence of facts in order (planned, about to send,
accepted with this operation URL, ended), and an append plus ``fsync`` is the simplest write that
survives SIGKILL at any instant: a torn last line is the only possible damage, and replay skips it.
The files are readable with ``jq`` when something needs explaining, and a job's file is locked
(``flock``) by the one process driving it, so a console and a headless ``jobs resume`` never drive
the same job at once. The lock dies with its process, SIGKILL included.

The rule that makes resuming safe: an ``intent`` line is written and synced before a request leaves;
an ``accepted`` line (with the operation URL or the resource to read) after ARM answered. On replay a
target with an intent but no accepted line is "in doubt": the engine asks ARM (the resource names are
deterministic) instead of sending again.

No secret is ever passed to this module: bodies carry ``<hidden>``, and ``scrub`` drops known secret
keys at any depth all the same. Directory 0700, files 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import state_dir
from ..fleet.model import clean_text
from .catalog import Call, Target

FORMAT = 1
SECRET_KEYS = frozenset({"protectedsettings", "protectedparameters", "runaspassword", "adminpassword", "authorization",
                         "access_token", "accesstoken", "token", "protected_settings", "protected_parameters"})
TERMINAL = frozenset({"succeeded", "failed", "skipped", "cancelled", "in-doubt"})
RETRYABLE = frozenset({"failed", "cancelled", "in-doubt"})  # what retry-failed sends again


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scrub(node: Any) -> Any:
    """Drop secret-named keys at any depth, unless they hold only names or the <hidden> marker."""
    if isinstance(node, dict):
        return {k: scrub(v) for k, v in node.items() if str(k).lower() not in SECRET_KEYS or _names_only(v)}
    if isinstance(node, list):
        return [scrub(x) for x in node]
    return node


def _names_only(value: Any) -> bool:
    """A secret key whose value is only names or the <hidden> marker carries no secret."""
    if value == "<hidden>":
        return True
    if isinstance(value, list):
        return all(isinstance(x, str) or (isinstance(x, dict) and x.get("value") == "<hidden>") for x in value)
    return False


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    return path


def default_dir() -> Path:
    return state_dir() / "jobs"


class JobBusyError(RuntimeError):
    """Another process is driving this job."""


@dataclass
class TargetRecord:
    target: Target
    params: dict[str, Any]
    call: Call
    state: str = "queued"  # queued | running | waiting-for-throttle | succeeded | failed | skipped | cancelled | in-doubt
    attempt: int = 0  # requests sent so far
    round: int = 1  # 1, then one more per retry-failed (a Run Command's name changes per round)
    in_doubt: bool = False  # an intent with no answer: ARM may or may not have the request
    poll: dict[str, Any] | None = None  # how to follow the accepted request (see engine)
    request_id: str = ""
    correlation_id: str = ""
    code: str = ""
    message: str = ""
    output: dict[str, Any] | None = None  # Run Command output
    result: Any = None  # an action's result (patch counts)
    retries: int = 0
    started: str = ""
    ended: str = ""
    intent_at: str = ""  # when the last request was about to leave (an in-doubt POST is judged against it)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


@dataclass
class JobRecord:
    id: str
    action: str
    title: str
    params: dict[str, Any]
    secret_names: tuple[str, ...]
    created: str
    principal: str
    targets: dict[str, TargetRecord]  # lower-case server id -> record, in plan order
    skipped: list[tuple[Target, str]] = field(default_factory=list)
    cancelled: bool = False
    finished: str = ""
    problems: list[str] = field(default_factory=list)  # lines replay could not read
    endpoint: str = ""  # the ARM base URL the job was started against ("" in journals from before it was kept)

    @property
    def unfinished(self) -> bool:
        return any(not t.done for t in self.targets.values())

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.targets.values():
            out[t.state] = out.get(t.state, 0) + 1
        if self.skipped:
            out["skipped"] = out.get("skipped", 0) + len(self.skipped)
        return out


class JobWriter:
    """Appends to one job's file while holding its lock."""

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        self._written = self._synced = 0
        self._sync_lock = asyncio.Lock()
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
        self.fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise JobBusyError(f"job {path.stem} is being run by another process") from None

    def append(self, record: dict[str, Any], *, sync: bool = False) -> None:
        """Append one record. A written line survives the process being killed (it is in the kernel);
        ``sync`` (or ``durable``) also makes it survive the machine going down."""
        line = json.dumps(scrub({"at": now_iso(), **record}), ensure_ascii=False, separators=(",", ":")) + "\n"
        os.write(self.fd, line.encode("utf-8"))
        self._written += 1
        if sync:
            os.fsync(self.fd)
            self._synced = self._written

    async def durable(self) -> None:
        """fsync everything appended so far, off the event loop; callers waiting together share one fsync
        (group commit: 500 intents cost a few fsyncs, not 500)."""
        wanted = self._written
        async with self._sync_lock:
            if self._synced >= wanted:
                return
            upto = self._written
            await asyncio.to_thread(os.fsync, self.fd)
            self._synced = max(self._synced, upto)

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
            self.fd = -1


class Journal:
    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_dir()

    def path(self, job_id: str) -> Path:
        if not job_id or not all(c.isalnum() or c in "-_" for c in job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.directory / f"{job_id}.jsonl"

    def create(self, header: dict[str, Any]) -> JobWriter:
        private_dir(self.directory)
        writer = JobWriter(self.path(header["id"]), create=True)
        writer.append({"t": "job", "v": FORMAT, **header}, sync=True)
        return writer

    def open(self, job_id: str) -> JobWriter:
        path = self.path(job_id)
        if not path.is_file():
            raise FileNotFoundError(f"no job {job_id} in {self.directory}")
        return JobWriter(path, create=False)

    def busy(self, job_id: str) -> bool:
        try:
            self.open(job_id).close()
        except JobBusyError:
            return True
        except OSError:
            return False
        return False

    def job_ids(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        files = sorted(self.directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        return [p.stem for p in files]

    def load(self, job_id: str) -> JobRecord:
        """Replay one job's file. Unreadable lines are skipped and named in ``problems``."""
        job: JobRecord | None = None
        problems: list[str] = []
        with open(self.path(job_id), encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        raise ValueError("not an object")
                    if job is None:
                        if rec.get("t") != "job":
                            raise ValueError("the first line is not the job header")
                        job = _header(rec)
                    else:
                        _apply(job, rec)
                except (ValueError, KeyError, TypeError) as e:
                    problems.append(f"line {n}: {type(e).__name__}: {clean_text(e, limit=120)}")
        if job is None:
            raise ValueError(f"job {job_id}: no readable header ({'; '.join(problems) or 'empty file'})")
        job.problems = problems
        return job

    def jobs(self) -> Iterator[JobRecord]:
        for job_id in self.job_ids():
            try:
                yield self.load(job_id)
            except (OSError, ValueError):
                continue

    def unfinished(self) -> list[JobRecord]:
        """Jobs with targets not yet at an end and not cancelled before sending: resume these on start."""
        return [j for j in self.jobs() if j.unfinished]


def _header(rec: dict) -> JobRecord:
    targets: dict[str, TargetRecord] = {}
    for t in rec.get("targets") or []:
        target = Target.from_json(t["target"])
        targets[target.id.lower()] = TargetRecord(target, dict(t.get("params") or {}), Call.from_json(t["call"]))
    skipped = [(Target.from_json(s["target"]), clean_text(s.get("reason"))) for s in rec.get("skipped") or []]
    return JobRecord(id=str(rec["id"]), action=str(rec["action"]), title=clean_text(rec.get("title")),
                     params=dict(rec.get("params") or {}), secret_names=tuple(rec.get("secretNames") or ()),
                     created=str(rec.get("at", "")), principal=clean_text(rec.get("principal") or "unknown"),
                     targets=targets, skipped=skipped, endpoint=clean_text(rec.get("endpoint") or ""))


def _apply(job: JobRecord, rec: dict) -> None:
    kind = rec.get("t")
    if kind == "cancel":
        job.cancelled = True
        for t in job.targets.values():
            if t.state == "queued" and not t.in_doubt and t.poll is None:
                t.state = "cancelled"
        return
    if kind == "retry":
        job.cancelled = False
        for tid in rec.get("targets") or []:
            t = job.targets.get(str(tid).lower())
            if t is not None and t.state in RETRYABLE:
                t.state, t.poll, t.in_doubt, t.code, t.message, t.output, t.result = "queued", None, False, "", "", None, None
                t.round += 1
        return
    if kind == "finished":
        job.finished = str(rec.get("at", ""))
        return
    t = job.targets.get(str(rec.get("target", "")).lower())
    if t is None:
        raise KeyError(f"unknown target in a {kind!r} record")
    if kind == "intent":
        t.attempt, t.in_doubt, t.state = int(rec.get("attempt") or t.attempt + 1), True, "running"
        t.started = t.started or str(rec.get("at", ""))
        t.intent_at = str(rec.get("at", ""))
    elif kind == "accepted":
        t.in_doubt = False
        t.poll = rec.get("poll")
        t.request_id, t.correlation_id = str(rec.get("requestId", "")), str(rec.get("correlationId", ""))
    elif kind == "done":
        t.state = str(rec["state"])
        t.in_doubt = False
        t.code, t.message = str(rec.get("code", "")), clean_text(rec.get("message"), limit=2000)
        t.output, t.result, t.ended = rec.get("output"), rec.get("result"), str(rec.get("at", ""))
        t.retries = int(rec.get("retries") or 0)
        t.request_id = str(rec.get("requestId") or t.request_id)
        t.correlation_id = str(rec.get("correlationId") or t.correlation_id)
    else:
        raise ValueError(f"unknown record type {kind!r}")
