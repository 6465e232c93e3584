"""The job engine: dispatch a plan under each subscription's write budget, track every call to its end.

One engine serves the console and the headless commands. Per target: queued → (waiting-for-throttle)
→ running → succeeded | failed(code, message) | cancelled; skipped targets come from the plan.

* **Budget.** Writes and deletes spend a token from a per-subscription bucket mirroring ARM's (200
  burst, 10/s), corrected by ``x-ms-ratelimit-remaining-subscription-writes`` on every answer, so the
  engine waits before ARM would throttle, and says so (waiting-for-throttle). A global semaphore bounds
  the requests in flight. The transport underneath keeps its own mirror and retries 429s (Retry-After).
* **Tracking.** Through our own transport, not the SDK pollers: every poll then shares the transport's
  read budget, retries and events, the journal keeps a plain URL (resumable by any version, unlike a
  pickled poller continuation token), and a child resource (extension, Run Command) is followed by
  reading the resource itself — one GET when timed by Retry-After, and that GET is also the fresh
  state the table needs. POST actions follow Azure-AsyncOperation, then read Location for the result.
* **Journal first.** The intent is synced to disk before each request leaves; the operation URL after
  ARM accepts. A resumed job tracks what was accepted, asks ARM about what was in doubt (deterministic
  names), and sends only what never left.
* **Never a secret on disk**: secrets are passed to ``run``/``resume`` and used only to build the body
  at the moment of sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from ..arm.transport import ArmConnectionError, ArmHttpError, ArmTransport, parse_json, retry_after_seconds
from ..fleet.model import Kind, clean_text
from .audit import AuditLog, principal_from_token
from .catalog import HIDDEN, Call, action, parse_time
from .gate import ReadOnlyError, WriteGate
from .journal import RETRYABLE, JobRecord, JobWriter, Journal, TargetRecord, now_iso, scrub
from .plan import Plan

log = logging.getLogger("wsam_tui.ops")

OUTPUT_LIMIT = 4096  # Run Command keeps the last 4,096 bytes of each stream
TERMINAL_PROVISIONING = {"succeeded", "failed", "canceled", "cancelled"}
TERMINAL_EXECUTION = {"succeeded", "failed", "timedout", "canceled", "cancelled"}


class TargetState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    THROTTLED = "waiting-for-throttle"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    IN_DOUBT = "in-doubt"  # a request that may or may not have reached ARM, and is not safe to send again


@dataclass(frozen=True)
class JobEvent:
    """One change of one target, for a jobs pane or stderr progress."""

    job_id: str
    target_id: str
    target_name: str
    state: str
    code: str = ""
    message: str = ""
    retries: int = 0
    resource: dict | None = None  # the server (or extension / run command) as re-read after success


class ForeignJobError(ValueError):
    """The job was started against another ARM endpoint than this engine's: nothing is sent."""


class _Bucket:
    """ARM's write bucket for one subscription, as the engine spends it."""

    def __init__(self, capacity: float, refill: float) -> None:
        self.capacity, self.refill = capacity, refill
        self.tokens, self.updated = capacity, time.monotonic()
        self.lock = asyncio.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill)
        self.updated = now

    def _peek(self) -> float:
        return min(self.capacity, self.tokens + (time.monotonic() - self.updated) * self.refill)

    async def take(self, on_wait: Callable[[float], None], sleep: Callable[[float], Any]) -> None:
        if self._peek() < 1:  # every target queued behind a spent bucket shows as waiting, not just the first
            on_wait((1 - self._peek()) / self.refill)
        async with self.lock:
            self._refresh()
            if self.tokens < 1:
                wait = (1 - self.tokens) / self.refill
                on_wait(wait)
                await sleep(wait)
                self._refresh()
            self.tokens -= 1

    def observe(self, remaining: int) -> None:
        self._refresh()
        self.tokens = min(self.tokens, float(remaining))


@dataclass
class _Live:
    record: JobRecord
    writer: JobWriter
    secrets: Mapping[str, Any]
    cancelled: bool = False
    resources: dict[str, dict] = field(default_factory=dict)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)  # set on cancel: wakes every target still waiting

    def __post_init__(self) -> None:
        if self.cancelled:
            self.stopped.set()


class Engine:
    def __init__(self, transport: ArmTransport, *, journal: Journal | None = None, audit: AuditLog | None = None,
                 readonly: bool = False, concurrency: int = 32, on_event: Callable[[JobEvent], None] | None = None,
                 reread: bool = True, max_attempts: int = 3, poll_cap_s: float = 10.0, track_timeout_s: float = 4 * 3600,
                 write_budget: tuple[float, float] = (200.0, 10.0)) -> None:
        self.transport = transport
        self.gate = WriteGate(transport, readonly=readonly)
        self.journal = journal or Journal()
        self.audit = audit or AuditLog()
        self.on_event = on_event
        self.reread = reread
        self.max_attempts = max_attempts
        self.poll_cap_s = poll_cap_s
        self.track_timeout_s = track_timeout_s
        self.write_budget = write_budget
        self.sleep: Callable[[float], Any] = asyncio.sleep
        self._slots = asyncio.Semaphore(concurrency)
        self._polls = asyncio.Semaphore(concurrency)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._live: dict[str, _Live] = {}
        self._principal: str | None = None

    # ---- public ---------------------------------------------------------------------------------

    @property
    def readonly(self) -> bool:
        return self.gate.readonly

    async def run(self, plan: Plan, *, secrets: Mapping[str, Any] | None = None) -> JobRecord:
        """Start a job for ``plan`` and drive it to its end. Raises ReadOnlyError (nothing journaled or sent)."""
        if plan.readonly:
            raise ReadOnlyError("read-only mode: this plan was made read-only; nothing is sent")
        for t in plan.targets:
            self.gate.check(t.call.method, t.call.path)
        missing = [n for n in plan.secret_names if not (secrets or {}).get(n)]
        if missing:
            raise ValueError(f"the plan needs {', '.join(missing)} at dispatch; they are never stored, pass them again")
        principal = await self._whoami()
        header = {
            "id": plan.id, "action": plan.action, "title": plan.title, "params": plan.params,
            "secretNames": list(plan.secret_names), "principal": principal, "endpoint": self.transport.base_url,
            "targets": [{"target": t.target.to_json(), "params": t.params, "call": t.call.to_json()} for t in plan.targets],
            "skipped": [{"target": s.target.to_json(), "reason": s.reason} for s in plan.skipped],
        }
        writer = self.journal.create(header)
        self.audit.write("job-started", {
            "job": plan.id, "principal": principal, "action": plan.action, "title": plan.title, "params": plan.params,
            "targets": [t.target.id for t in plan.targets],
            "skipped": [{"target": s.target.id, "reason": s.reason} for s in plan.skipped],
        })
        record = self.journal.load(plan.id)
        return await self._drive(record, writer, secrets or {})

    async def resume(self, job_id: str, *, secrets: Mapping[str, Any] | None = None) -> JobRecord:
        """Drive an interrupted job to its end: track what was accepted, ask ARM about what was in doubt,
        send only what never left. Raises JobBusyError when another process drives it."""
        writer = self.journal.open(job_id)
        try:
            record = self.journal.load(job_id)
            self._refuse_if_readonly(record)
        except BaseException:
            writer.close()
            raise
        self.audit.write("job-resumed", {"job": job_id, "principal": await self._whoami(), "action": record.action})
        return await self._drive(record, writer, secrets or {})

    async def retry_failed(self, job_id: str, *, secrets: Mapping[str, Any] | None = None) -> JobRecord:
        """Send again to the targets that failed, were cancelled or ended in doubt (a new round: new Run Command
        names)."""
        writer = self.journal.open(job_id)
        try:
            record = self.journal.load(job_id)
            self._refuse_if_readonly(record)
            again = [t.target.id for t in record.targets.values() if t.state in RETRYABLE]
            writer.append({"t": "retry", "targets": again}, sync=True)
            record = self.journal.load(job_id)
        except BaseException:
            writer.close()
            raise
        self.audit.write("job-retry", {"job": job_id, "principal": await self._whoami(), "action": record.action,
                                       "targets": again})
        return await self._drive(record, writer, secrets or {})

    def cancel(self, job_id: str) -> bool:
        """Stop dispatching: queued targets become cancelled; what was sent is still tracked to its end."""
        live = self._live.get(job_id)
        if live is None or live.cancelled:
            return False
        live.cancelled = True
        live.stopped.set()
        live.writer.append({"t": "cancel"}, sync=True)
        self.audit.write("job-cancelled", {"job": job_id, "principal": live.record.principal,
                                           "action": live.record.action})
        return True

    def live(self, job_id: str) -> JobRecord | None:
        live = self._live.get(job_id)
        return live.record if live else None

    def resource(self, job_id: str, target_id: str) -> dict | None:
        live = self._live.get(job_id)
        return live.resources.get(target_id.lower()) if live else None

    # ---- driving ----------------------------------------------------------------------------------

    def _refuse_if_readonly(self, record: JobRecord) -> None:
        self._refuse_if_elsewhere(record)
        for t in record.targets.values():
            if not t.done:
                self.gate.check(t.call.method, t.call.path)

    def _refuse_if_elsewhere(self, record: JobRecord) -> None:
        """A job is resumed or retried only against the ARM it was started on: its operation URLs, and the
        resources its calls name, are that endpoint's (a job started on a simulator must never send its
        writes to Azure, nor an Azure job be marked failed by a simulator that never heard of it)."""
        here = self.transport.base_url.rstrip("/").lower()
        if record.endpoint and record.endpoint.rstrip("/").lower() != here:
            raise ForeignJobError(f"job {record.id} was started against {record.endpoint}; this session is connected "
                                  f"to {self.transport.base_url}: resume it from a console or command connected there")

    async def _whoami(self) -> str:
        if self._principal is None:
            try:
                self._principal = principal_from_token(await self.transport.token_provider())
            except Exception:  # naming the principal must never stop an action
                self._principal = "unknown"
        return self._principal

    async def _drive(self, record: JobRecord, writer: JobWriter, secrets: Mapping[str, Any]) -> JobRecord:
        live = _Live(record, writer, secrets, cancelled=record.cancelled)
        self._live[record.id] = live
        try:
            await asyncio.gather(*(self._target(live, t) for t in record.targets.values() if not t.done))
            if not record.unfinished:
                writer.append({"t": "finished", "counts": record.counts()}, sync=True)
                self.audit.write("job-finished", {"job": record.id, "action": record.action, "counts": record.counts()})
        finally:
            with contextlib.suppress(OSError):
                await writer.durable()
            writer.close()
        return record

    def _emit(self, live: _Live, t: TargetRecord, resource: dict | None = None) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(JobEvent(live.record.id, t.target.id, t.target.name, t.state, t.code, t.message, t.retries,
                                   resource))
        except Exception:  # a broken listener must not stop a job
            log.exception("job event listener failed")

    def _set(self, live: _Live, t: TargetRecord, state: TargetState) -> None:
        if t.state != state:
            t.state = state.value
            self._emit(live, t)

    def _finish(self, live: _Live, t: TargetRecord, state: TargetState, *, code: str = "", message: str = "",
                output: dict | None = None, result: Any = None, resource: dict | None = None) -> None:
        t.state, t.code, t.message = state.value, clean_text(code, limit=200), clean_text(message, limit=2000)
        t.ended = now_iso()
        t.output, t.result = output, scrub(result) if result is not None else None
        live.writer.append({"t": "done", "target": t.target.id, "state": t.state, "code": t.code, "message": t.message,
                            "output": output, "result": t.result, "retries": t.retries, "requestId": t.request_id,
                            "correlationId": t.correlation_id})
        if resource is not None:
            resource = scrub(resource)  # what the console keeps of it: never a protected value
            live.resources[t.target.id.lower()] = resource
        self.audit.write("target", {
            "job": live.record.id, "principal": live.record.principal, "action": live.record.action,
            "target": t.target.id, "outcome": t.state, "code": t.code, "message": t.message[:500],
            "requestId": t.request_id, "correlationId": t.correlation_id, "attempts": t.attempt, "retries": t.retries,
        })
        self._emit(live, t, resource)

    async def _target(self, live: _Live, t: TargetRecord) -> None:
        try:
            if t.poll is None and t.in_doubt:
                await self._recover(live, t)
                if t.done:
                    return
            if t.poll is None:
                await self._send(live, t)
            if t.poll is not None and not t.done:
                await self._track(live, t)
        except Exception as e:  # one target's surprise must not take down the job
            log.exception("target %s failed unexpectedly", t.target.id)
            if not t.done:
                self._finish(live, t, TargetState.FAILED, code="InternalError", message=f"{type(e).__name__}: {e}")

    def _call(self, live: _Live, t: TargetRecord, *, with_secrets: bool) -> Call:
        act = action(live.record.action)
        params = {**t.params, "round": t.round}
        return act.request(t.target, params, live.secrets if with_secrets else None)

    async def _recover(self, live: _Live, t: TargetRecord) -> None:
        """An intent with no answer: did ARM get it? Resources with deterministic names can say."""
        call = self._call(live, t, with_secrets=False)
        act = action(live.record.action)
        if call.track == "resource":
            doc = await self._read_resource(call)
            state = _provisioning(doc) if doc is not None else None
            if call.deleting:
                if doc is None:
                    self._finish(live, t, TargetState.SUCCEEDED, message="removed (confirmed after restart)")
                    return
                if state not in TERMINAL_PROVISIONING:
                    t.poll = {"mode": "resource", "after": 1.0}
                    self._accept(live, t, t.poll)
                return
            arrived = doc is not None and (live.record.action == "run-command" or state not in TERMINAL_PROVISIONING)
            if arrived:  # a run command's name is new per round, so finding it means it arrived: follow it
                t.poll = {"mode": "resource", "after": 0.0}
                self._accept(live, t, t.poll)
                return
            if doc is None or act.idempotent:
                t.in_doubt = False  # not there, or sending it again changes nothing: send
                return
        elif call.track == "operation":  # a POST: what its server shows now says whether it arrived
            await self._judge_arrival(live, t, act)
            return
        elif act.idempotent:
            t.in_doubt = False
            return
        self._finish(live, t, TargetState.IN_DOUBT, code="InDoubt",
                     message="in doubt: the process stopped while this request was in flight; ARM may have received "
                             "it. Check the server, then retry-failed to send it again.")

    async def _judge_arrival(self, live: _Live, t: TargetRecord, act: Any) -> bool:
        """Read what the action names as evidence and act on the verdict: done → succeeded, running → follow
        (poll mode "confirm"), absent → clear the doubt (send), unknown → in doubt. True when it ended."""
        what = act.evidence(t.target)
        try:
            evidence = await self._read_evidence(t, what) if what else None
        except (ArmHttpError, ArmConnectionError) as e:
            self._finish(live, t, TargetState.IN_DOUBT, code="InDoubt",
                         message=f"in doubt: could not read the {what} to learn whether the request arrived "
                                 f"({e.code}); check the server, then retry-failed")
            return True
        arrival = act.arrival(t.target, t.params, evidence, parse_time(t.intent_at))
        if arrival.verdict == "done":
            self._finish(live, t, TargetState.SUCCEEDED, message=f"confirmed by reading the server: {arrival.message}",
                         resource=evidence if isinstance(evidence, dict) else None)
            return True
        if arrival.verdict == "running":
            if t.poll is None:
                t.poll = {"mode": "confirm", "after": 1.0}
                self._accept(live, t, t.poll)
            return False
        if arrival.verdict == "absent" and t.poll is None:
            t.in_doubt = False  # never arrived, or idempotent by nature: send
            return False
        self._finish(live, t, TargetState.IN_DOUBT, code="InDoubt", message=arrival.message or (
            "in doubt: the server stopped showing the operation before its end; check it, then retry-failed"))
        return True

    async def _read_evidence(self, t: TargetRecord, what: str) -> Any:
        api = "2024-07-01" if t.target.kind is Kind.VM else "2024-07-10"
        if what == "machine":
            doc = parse_json(await self.gate.read(t.target.id, {"api-version": api, "$expand": "instanceView"}),
                             "GET", t.target.id)
            return scrub(doc) if isinstance(doc, dict) else None
        path = f"{t.target.id}/extensions"
        body = parse_json(await self.gate.read(path, {"api-version": api}), "GET", path)
        return scrub(body.get("value") or []) if isinstance(body, dict) else []

    async def _bucket(self, subscription: str, kind: str) -> _Bucket:
        key = (subscription.lower(), kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(*self.write_budget)
        return bucket

    async def _send(self, live: _Live, t: TargetRecord) -> None:
        act = action(live.record.action)
        kind = "deletes" if t.call.method == "DELETE" else "writes"
        bucket = await self._bucket(t.target.subscription_id, kind)
        for attempt in range(1, self.max_attempts + 1):
            async with self._slot(live) as got:
                # A cancel wakes targets waiting for a slot or for the write budget at once: never sent.
                got = got and await self._unless_cancelled(
                    live, bucket.take(lambda _wait: self._set(live, t, TargetState.THROTTLED), self.sleep))
                if not got or live.cancelled:
                    self._finish(live, t, TargetState.CANCELLED, message="cancelled before it was sent")
                    return
                call = self._call(live, t, with_secrets=True)
                public = self._call(live, t, with_secrets=False)
                if _has_hidden(call.body):
                    self._finish(live, t, TargetState.FAILED, code="SecretsNotKept",
                                 message="this job needs its protected values again (they are never stored); "
                                         "resume it with them")
                    return
                t.attempt += 1
                t.intent_at = now_iso()
                live.writer.append({"t": "intent", "at": t.intent_at, "target": t.target.id, "attempt": t.attempt,
                                    "method": public.method, "path": public.path})
                await live.writer.durable()  # on disk before the request leaves
                t.in_doubt = True
                t.started = t.started or now_iso()
                self._set(live, t, TargetState.RUNNING)
                try:
                    resp = await self.gate.send(call.method, call.path, api_version=call.api_version, body=call.body,
                                                idempotent=act.idempotent)
                except ArmConnectionError as e:
                    # Did it arrive? Ask ARM where names allow; otherwise send again only if that is safe.
                    await self._recover(live, t)
                    if t.done or t.poll is not None:
                        return
                    t.retries += 1
                    if attempt < self.max_attempts:
                        continue
                    self._finish(live, t, TargetState.FAILED, code=e.code, message=e.message)
                    return
                except ArmHttpError as e:
                    t.request_id, t.correlation_id = e.request_id, e.correlation_id
                    transient = e.status in (429, 500, 502, 503, 504)
                    if transient and not act.idempotent:
                        await self._recover(live, t)  # a 5xx may still have done it: ask before sending again
                        if t.done or t.poll is not None:
                            return
                    t.in_doubt = False
                    if transient and (act.idempotent or call.track == "resource") and attempt < self.max_attempts:
                        t.retries += 1
                        await self._unless_cancelled(live, self.sleep(min(2.0 ** attempt, self.poll_cap_s)))
                        continue
                    self._finish(live, t, TargetState.FAILED, code=e.code, message=e.message)
                    return
            self._observe(bucket, resp)
            self._accepted(live, t, call, resp)
            return

    @staticmethod
    async def _unless_cancelled(live: _Live, waiting: Awaitable[Any]) -> bool:
        """Wait for ``waiting`` unless the job is cancelled first (then ``waiting`` is abandoned): True when it ended."""
        task = asyncio.ensure_future(waiting)
        if live.stopped.is_set():
            task.cancel()
        else:
            stop = asyncio.ensure_future(live.stopped.wait())
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if task.done() and not task.cancelled():
                task.result()  # raise what it raised
                return True
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    @contextlib.asynccontextmanager
    async def _slot(self, live: _Live) -> AsyncIterator[bool]:
        """One of the global slots, unless the job is cancelled while waiting for it (yields False then)."""
        got = await self._unless_cancelled(live, self._slots.acquire())
        try:
            yield got
        finally:
            if got:
                self._slots.release()

    @staticmethod
    def _observe(bucket: _Bucket, resp: httpx.Response) -> None:
        for name in ("x-ms-ratelimit-remaining-subscription-writes", "x-ms-ratelimit-remaining-subscription-deletes"):
            value = resp.headers.get(name)
            if value is not None:
                with contextlib.suppress(ValueError):
                    bucket.observe(int(value))

    def _accept(self, live: _Live, t: TargetRecord, poll: dict) -> None:
        t.in_doubt = False
        live.writer.append({"t": "accepted", "target": t.target.id, "poll": poll, "requestId": t.request_id,
                            "correlationId": t.correlation_id})

    def _accepted(self, live: _Live, t: TargetRecord, call: Call, resp: httpx.Response) -> None:
        t.request_id = resp.headers.get("x-ms-request-id", "")
        t.correlation_id = resp.headers.get("x-ms-correlation-request-id", "")
        after = retry_after_seconds(resp.headers)
        op_url = resp.headers.get("Azure-AsyncOperation", "")
        location = resp.headers.get("Location", "")
        try:
            body = parse_json(resp, call.method, call.path) if resp.content else None
        except ArmHttpError:  # accepted with a damaged body: what to follow is in the headers
            body = None
        if call.track == "sync":
            t.poll = {"mode": "done"}
            self._accept(live, t, t.poll)
            self._finish(live, t, TargetState.SUCCEEDED, result=body, resource=body if isinstance(body, dict) else None)
            return
        if call.track == "resource":
            if call.deleting and resp.status_code in (200, 204) and not op_url:
                t.poll = {"mode": "done"}
                self._accept(live, t, t.poll)
                self._finish(live, t, TargetState.SUCCEEDED, message="removed")
                return
            t.poll = {"mode": "resource", "op": op_url, "after": after if after is not None else 1.0}
        else:
            if resp.status_code == 200 and not op_url and not location:
                t.poll = {"mode": "done"}
                self._accept(live, t, t.poll)
                self._finish(live, t, TargetState.SUCCEEDED, result=body)
                return
            if not op_url and not location:
                t.poll = {"mode": "done"}
                self._accept(live, t, t.poll)
                self._finish(live, t, TargetState.SUCCEEDED, message=f"accepted (HTTP {resp.status_code}); "
                             "ARM named no operation to follow", result=body)
                return
            t.poll = {"mode": "operation", "op": op_url, "location": location, "after": after if after is not None else 1.0}
        self._accept(live, t, t.poll)

    # ---- tracking ---------------------------------------------------------------------------------

    async def _track(self, live: _Live, t: TargetRecord) -> None:
        poll = t.poll or {}
        if poll.get("mode") == "done":
            if not t.done:
                self._finish(live, t, TargetState.SUCCEEDED)
            return
        self._set(live, t, TargetState.RUNNING)
        deadline = time.monotonic() + self.track_timeout_s
        delay = max(0.0, min(float(poll.get("after") or 0.0), self.poll_cap_s))
        failures = 0
        while time.monotonic() < deadline:
            await self.sleep(delay)
            try:
                async with self._polls:
                    if poll.get("mode") == "resource":
                        ended = await self._poll_resource(live, t, poll)
                    elif poll.get("mode") == "confirm":  # an in-doubt POST found running: until its server shows the end
                        ended = await self._judge_arrival(live, t, action(live.record.action))
                    else:
                        ended, hint = await self._poll_operation(live, t, poll)
                        if hint is not None:
                            delay = hint
                failures = 0
            except ArmHttpError as e:  # the transport already retried; keep following, within reason
                failures += 1
                if failures >= 8:
                    self._finish(live, t, TargetState.FAILED, code="TrackingFailed",
                                 message=f"lost track of the operation after {failures} failed reads: {e.describe()}")
                    return
                ended = False
            if ended:
                return
            if poll.get("mode") in ("resource", "confirm") or failures:
                delay = min(self.poll_cap_s, max(delay * 1.5, 0.2))
        self._finish(live, t, TargetState.FAILED, code="TrackingTimeout",
                     message=f"still running after {self.track_timeout_s:.0f} s; check the server")

    async def _read_resource(self, call: Call) -> dict | None:
        params = {"api-version": call.api_version}
        if call.expand:
            params["$expand"] = call.expand
        try:
            resp = await self.gate.read(call.resource_path, params)
        except ArmHttpError as e:
            if e.status == 404:
                return None
            raise
        doc = parse_json(resp, "GET", call.resource_path)
        return doc if isinstance(doc, dict) else None

    async def _poll_resource(self, live: _Live, t: TargetRecord, poll: dict) -> bool:
        call = self._call(live, t, with_secrets=False)
        doc = await self._read_resource(call)
        if doc is None:
            if call.deleting:
                self._finish(live, t, TargetState.SUCCEEDED, message="removed")
                return True
            self._finish(live, t, TargetState.FAILED, code="NotFound", message=f"{call.resource_path} is gone")
            return True
        state = _provisioning(doc)
        is_run = live.record.action == "run-command"
        view = (doc.get("properties") or {}).get("instanceView") or {}
        if is_run and state in TERMINAL_PROVISIONING and str(view.get("executionState", "")).lower() not in TERMINAL_EXECUTION:
            return False  # asyncExecution-style: the resource is ready, the script still runs
        if state not in TERMINAL_PROVISIONING:
            return False
        clean = scrub(doc)
        if is_run:
            output = run_output(view)
            ok = state == "succeeded" and output["executionState"].lower() == "succeeded"
            if ok:
                self._finish(live, t, TargetState.SUCCEEDED, output=output, resource=clean)
            else:
                code = f"Execution{output['executionState'] or 'Failed'}"
                first = output["stderr"].strip().splitlines()[0] if output["stderr"].strip() else ""
                message = f"exit code {output['exitCode']}" + (f": {first}" if first else "")
                if code == "ExecutionTimedOut":  # stopped by ARM: the exit code is not the script's answer
                    timeout = (doc.get("properties") or {}).get("timeoutInSeconds")
                    message = f"timed out after {timeout} s (the run's timeoutInSeconds)" if isinstance(timeout, int) \
                        else "timed out (the run's timeoutInSeconds)"
                self._finish(live, t, TargetState.FAILED, code=code, message=message, output=output, resource=clean)
            return True
        if state == "succeeded":
            self._finish(live, t, TargetState.SUCCEEDED, resource=clean)
            return True
        code, message = await self._operation_error(poll.get("op") or "")
        if not code:
            code, message = "ProvisioningFailed", _status_message(view) or f"provisioningState {state}"
        self._finish(live, t, TargetState.FAILED, code=code, message=message, resource=clean)
        return True

    async def _operation_error(self, op_url: str) -> tuple[str, str]:
        if not op_url:
            return "", ""
        try:
            body = parse_json(await self.gate.read(op_url), "GET", op_url)
        except ArmHttpError:
            return "", ""
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            return str(err.get("code") or ""), str(err.get("message") or "")
        return "", ""

    async def _poll_operation(self, live: _Live, t: TargetRecord, poll: dict) -> tuple[bool, float | None]:
        op, location = poll.get("op") or "", poll.get("location") or ""
        if op:
            resp = await self.gate.read(op)
            body = parse_json(resp, "GET", op)
            status = str((body or {}).get("status") or "").lower() if isinstance(body, dict) else ""
            hint = retry_after_seconds(resp.headers)
            if status in ("", "inprogress", "accepted", "running", "notstarted", "creating", "updating", "deleting"):
                return False, min(self.poll_cap_s, hint if hint is not None else 1.0)
            if status != "succeeded":
                err = (body or {}).get("error") or {}
                self._finish(live, t, TargetState.FAILED, code=str(err.get("code") or status.capitalize()),
                             message=str(err.get("message") or f"the operation ended {status}"))
                return True, None
            result = None
            if location:
                lresp = await self.gate.read(location)
                result = parse_json(lresp, "GET", location) if lresp.status_code == 200 else None
        else:
            resp = await self.gate.read(location)
            if resp.status_code == 202:
                hint = retry_after_seconds(resp.headers)
                return False, min(self.poll_cap_s, hint if hint is not None else 1.0)
            result = parse_json(resp, "GET", location)
        resource = await self._reread(t) if self.reread else None
        self._finish(live, t, TargetState.SUCCEEDED, result=result, resource=resource)
        return True, None

    async def _reread(self, t: TargetRecord) -> dict | None:
        """The server after the action, through ARM (Resource Graph lags): one GET with the instance view."""
        api = "2024-07-01" if t.target.kind is Kind.VM else "2024-07-10"
        try:
            resp = await self.gate.read(t.target.id, {"api-version": api, "$expand": "instanceView"})
            doc = parse_json(resp, "GET", t.target.id)
        except ArmHttpError:
            return None
        return scrub(doc) if isinstance(doc, dict) else None


# ---- helpers --------------------------------------------------------------------------------------


def _provisioning(doc: dict | None) -> str:
    return str(((doc or {}).get("properties") or {}).get("provisioningState") or "succeeded").lower()


def _status_message(view: dict) -> str:
    status = view.get("status")
    if isinstance(status, dict):
        return str(status.get("message") or "")
    for s in view.get("statuses") or []:
        if isinstance(s, dict) and s.get("message"):
            return str(s["message"])
    return ""


def _has_hidden(node: Any) -> bool:
    if node == HIDDEN:
        return True
    if isinstance(node, dict):
        return any(_has_hidden(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_hidden(v) for v in node)
    return False


def run_output(view: Mapping[str, Any]) -> dict[str, Any]:
    """A Run Command's instance view as stored: streams cleaned on arrival, the 4,096-byte cut flagged."""
    stdout = str(view.get("output") or "")
    stderr = str(view.get("error") or "")
    flagged = any("truncat" in str((s or {}).get("code", "")).lower() for s in view.get("statuses") or [] if isinstance(s, dict))
    truncated = flagged or len(stdout.encode("utf-8")) >= OUTPUT_LIMIT or len(stderr.encode("utf-8")) >= OUTPUT_LIMIT
    exit_code = view.get("exitCode")
    return {
        "executionState": clean_text(view.get("executionState"), limit=40),
        "exitCode": exit_code if isinstance(exit_code, int) else None,
        "stdout": clean_text(stdout, keep_newlines=True),
        "stderr": clean_text(stderr, keep_newlines=True),
        "truncated": truncated,
        "startTime": clean_text(view.get("startTime"), limit=40),
        "endTime": clean_text(view.get("endTime"), limit=40),
    }


@dataclass(frozen=True)
class OutputGroup:
    """Servers whose Run Command answered the same: "212 servers: Running"."""

    stdout: str
    stderr: str
    exit_code: int | None
    truncated: bool
    targets: tuple[str, ...]  # server names

    @property
    def count(self) -> int:
        return len(self.targets)


def group_outputs(job: JobRecord) -> list[OutputGroup]:
    """Targets with a Run Command output, grouped by identical output (stdout, stderr, exit code), largest first."""
    groups: dict[tuple, list[str]] = {}
    cut: dict[tuple, bool] = {}
    for t in job.targets.values():
        out = t.output
        if not isinstance(out, dict):
            continue
        key = (str(out.get("stdout", "")).rstrip(), str(out.get("stderr", "")).rstrip(), out.get("exitCode"))
        groups.setdefault(key, []).append(t.target.name)
        cut[key] = cut.get(key, False) or bool(out.get("truncated"))
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0][0]))
    return [OutputGroup(k[0], k[1], k[2], cut[k], tuple(sorted(v))) for k, v in ordered]


__all__ = ["Engine", "JobEvent", "OutputGroup", "ReadOnlyError", "TargetState", "group_outputs", "run_output"]
