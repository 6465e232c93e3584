"""The simulator's HTTP layer: ARM's envelope, headers, throttling, faults and request log.

One aiohttp application with one catch-all handler that routes on the path, case-insensitively,
ignoring api-version (the SDKs send a different api-version per operation group; arm-api.md §0).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from aiohttp import web

from .faults import FaultInjector
from .identity import Identity, TokenRejected
from .state import SimState, sub_rg_of
from .throttle import ArmThrottle, GraphQuota, hhmmss


class ArmError(Exception):
    """An error answered in ARM's envelope: {"error": {"code", "message", "details"?}}."""

    def __init__(self, status: int, code: str, message: str, *, details: list | None = None,
                 headers: dict[str, str] | None = None, target: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.headers, self.target = details, headers or {}, target

    def body(self) -> dict:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            err["target"] = self.target
        if self.details:
            err["details"] = self.details
        return {"error": err}


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    """What a handler needs from the request."""

    method: str
    path: str
    query: dict[str, str]  # keys lower-cased
    base_url: str
    api_version: str
    body: Any
    caller: str
    match: re.Match | None = None
    tenant: str | None = None  # the token's tenant, when the fleet asks for tokens per tenant

    def q(self, name: str, default: str | None = None) -> str | None:
        return self.query.get(name.lower(), default)

    def url(self, path: str, **params: str) -> str:
        params = {"api-version": self.api_version, **params}
        return f"{self.base_url}{path}?{urlencode(params)}"


Handler = Callable[["Simulator", Ctx], Awaitable[Reply] | Reply]


class Router:
    def __init__(self) -> None:
        self.routes: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        self.routes.append((frozenset(methods.split()), re.compile("^" + pattern + "/?$", re.IGNORECASE), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler | None, re.Match | None, bool]:
        """Returns (handler, match, path_known). path_known with no handler means a wrong method."""
        path_known = False
        for methods, pattern, handler in self.routes:
            m = pattern.match(path)
            if m:
                path_known = True
                if method in methods:
                    return handler, m, True
        return None, None, path_known


class RequestLog:
    """``--request-log FILE``: one JSON line per request, flushed as written."""

    def __init__(self, path: str | Path | None) -> None:
        self._fh: TextIO | None = open(path, "a", encoding="utf-8", buffering=1) if path else None  # noqa: SIM115
        self.entries: list[dict] = []
        self.keep_in_memory = True

    def write(self, entry: dict) -> None:
        if self.keep_in_memory:
            self.entries.append(entry)
        if self._fh:
            self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._fh:
            self._fh.close()
            self._fh = None


WRITE_METHODS = {"PUT", "PATCH", "POST", "DELETE"}
TENANT_TOKEN_PREFIX = "wsam-tenant:"  # a test token for one tenant (simulation.access.tokensPerTenant)


class Simulator:
    """The ARM simulator: state + behaviour knobs + the aiohttp application."""

    def __init__(self, state: SimState, *, latency_ms: float = 0, faults: FaultInjector | None = None,
                 throttle: ArmThrottle | None = None, graph_quota: GraphQuota | None = None,
                 request_log: RequestLog | None = None, audience: str = "https://management.azure.com/",
                 durable: Any = None) -> None:
        """``durable``: a sim.durable.DurableState whose ``flush()`` saves what each request changed before
        its response leaves (None: the state lives and dies with the process)."""
        from . import handlers  # routes live there; imported here to keep this module about plumbing

        self.state = state
        self.latency_ms = latency_ms
        self.faults = faults or FaultInjector()
        self.throttle = throttle or ArmThrottle()
        self.graph_quota = graph_quota or GraphQuota()
        self.log = request_log or RequestLog(None)
        self.durable = durable
        self.audience = audience
        self.identity = Identity.for_tenants(state.tenants)
        self.router = Router()
        handlers.register(self.router)
        self.graph_snapshots: dict[str, tuple[float, list, list]] = {}
        self.graph_results: dict[tuple, tuple[list, list]] = {}

    # ---- the app -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        correlation = request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
        client_rid = request.headers.get("x-ms-client-request-id")
        method = request.method.upper()
        path = "/" + request.path.lstrip("/")  # az glues "URL/" + "/metadata/endpoints"
        query = {k.lower(): v for k, v in request.query.items()}
        headers: dict[str, str] = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": correlation,
            "x-ms-routing-request-id": f"WSAMSIM:{datetime.now(UTC):%Y%m%dT%H%M%SZ}:{request_id}",
            "Cache-Control": "no-cache",
        }
        if client_rid:
            headers["x-ms-client-request-id"] = client_rid
        status = 500
        target = None
        fault_kind = None
        logged = False

        def log_entry() -> None:
            entry = {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "method": method,
                "path": path,
                "query": request.query_string,
                "status": status,
                "requestId": request_id,
                "correlationId": correlation,
                "ms": round((time.monotonic() - started) * 1000, 1),
            }
            if client_rid:
                entry["clientRequestId"] = client_rid
            if target:
                entry["target"] = target
            if fault_kind:
                entry["fault"] = fault_kind
            self.log.write(entry)

        try:
            if self.latency_ms:
                await asyncio.sleep(self.latency_ms / 1000)
            self.state.advance()
            if self.identity.handles(path):  # Entra's endpoints: its own shapes, no ARM faults or throttling
                response = await self.identity.handle(request, f"{request.scheme}://{request.host}")
                status = response.status
                return response
            is_control = path.lower().startswith("/_sim/")
            is_metadata = path.lower().startswith("/metadata/")
            if not (is_control or is_metadata):
                fault = self.faults.draw(method)
                if fault is not None:
                    fault_kind = fault.kind
                    reply = await self._inject(request, fault, headers)
                    if reply is None:  # connection reset: nothing is sent
                        status = 0
                        return web.Response(status=500)
                    if fault.kind != "slow":
                        status = reply.status
                        return reply_to_response(reply, headers)
            body = await self._read_body(request)
            ctx = Ctx(method=method, path=path, query=query, base_url=f"{request.scheme}://{request.host}",
                      api_version=query.get("api-version", "2024-01-01"), body=body,
                      caller=caller_of(request.headers.get("Authorization", "")))
            if not (is_control or is_metadata):
                self._authenticate(request, ctx)
                self._throttle(ctx, headers)
            handler, match, known = self.router.resolve(method, path)
            if handler is None:
                raise not_routable(method, path, known)
            ctx.match = match
            if method in WRITE_METHODS:
                target = write_target(path)
            result = handler(self, ctx)
            reply = await result if asyncio.iscoroutine(result) else result
            status = reply.status
            response = reply_to_response(reply, headers)
            # an answered write is on disk before its answer leaves, and its log line right after it (not
            # after the fsync: a process killed in between would have saved a request its log lacks)
            logged = self._save(log_entry)
            return response
        except ArmError as e:
            with contextlib.suppress(OSError):
                self._save()  # operations that ended before the error
            status = e.status
            headers.update(e.headers)
            return web.json_response(e.body(), status=e.status, headers=headers)
        except json.JSONDecodeError as e:
            status = 400
            err = ArmError(400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {e}")
            return web.json_response(err.body(), status=400, headers=headers)
        except Exception as e:  # never take the server down; say what happened in ARM's shape
            status = 500
            err = ArmError(500, "InternalServerError", f"The simulator failed to process the request: {e!r}")
            return web.json_response(err.body(), status=500, headers=headers)
        finally:
            if not logged:
                log_entry()

    def _save(self, after_write: Callable[[], None] | None = None) -> bool:
        """Saves what the request changed; True when ``after_write`` ran (it runs once the change is
        written, before the fsync)."""
        return self.durable is not None and self.durable.flush(after_write) > 0

    async def _read_body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return None
        return json.loads(raw)

    def _authenticate(self, request: web.Request, ctx: Ctx) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth:
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                           headers={"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"'})
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if self.state.config.tokens_per_tenant:
            self._check_tenant(auth[7:].strip(), ctx)

    def _check_tenant(self, token: str, ctx: Ctx) -> None:
        """``simulation.access.tokensPerTenant``: as in Azure, a token is issued for one tenant and reads
        only that tenant's subscriptions (and those delegated to it). The tenant is the ``tid`` of a token the
        simulator's identity endpoint issued (its signature checked, as ARM does), or the one a test token
        names: ``wsam-tenant:<tenantId>``."""
        if token.lower().startswith(TENANT_TOKEN_PREFIX):
            tenant = token[len(TENANT_TOKEN_PREFIX):].strip().lower()
        else:
            try:
                claims = self.identity.verify(token)
            except TokenRejected as e:
                raise ArmError(401, "InvalidAuthenticationToken", f"The access token is invalid: {e}.") from e
            audience = str(claims.get("aud", "")).rstrip("/")
            if audience not in {self.audience.rstrip("/"), "https://management.core.windows.net",
                                "https://management.azure.com"}:
                raise ArmError(401, "InvalidAuthenticationToken",
                               f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'. "
                               f"It should exactly match with one of the allowed audiences '{self.audience}', "
                               "'https://management.core.windows.net/'.")
            tenant = str(claims.get("tid", "")).lower()
        if tenant not in {str(t.get("tenantId", "")).lower() for t in self.state.tenants}:
            raise ArmError(401, "InvalidAuthenticationTokenTenant",
                           f"The access token is from an unknown issuer 'https://sts.windows.net/{tenant}/'.")
        ctx.tenant = tenant
        sub, _ = sub_rg_of(ctx.path)
        asked = [sub] if sub else []
        if not sub and ctx.path.lower().startswith("/providers/microsoft.resourcegraph/") and isinstance(ctx.body, dict):
            listed = ctx.body.get("subscriptions")
            asked = [s for s in listed if isinstance(s, str)] if isinstance(listed, list) else []
        for s in asked:
            if not self.state.tenant_reaches(s, tenant):
                owner = str(self.state.subscriptions[s.lower()].get("tenantId", ""))
                raise ArmError(
                    401, "InvalidAuthenticationTokenTenant",
                    f"The access token is from the wrong issuer 'https://sts.windows.net/{tenant}/'. It must match the "
                    f"tenant 'https://sts.windows.net/{owner}/' associated with this subscription. Please use the authority "
                    f"(URL) 'https://login.windows.net/{owner}' to get the token. Note, if the subscription is transferred to "
                    "another tenant there is no impact to the services, but information about new tenant could take time to "
                    "propagate (up to an hour). If you just transferred your subscription and see this error message, please "
                    "try back later.",
                    headers={"WWW-Authenticate": f'Bearer authorization_uri="https://login.windows.net/{owner}", '
                                                 'error="invalid_token", error_description="The access token is from the wrong issuer."'})

    def _throttle(self, ctx: Ctx, headers: dict[str, str]) -> None:
        if ctx.path.lower().startswith("/providers/microsoft.resourcegraph/"):
            return  # Resource Graph has its own quota, applied by its handler
        kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(ctx.method, "writes")
        sub, _ = sub_rg_of(ctx.path)
        scope_name = "subscription" if sub else "tenant"
        scope = f"subscription:{sub}" if sub else "tenant"
        allowed, remaining, wait = self.throttle.take(scope, kind)
        header = f"x-ms-ratelimit-remaining-{scope_name}-{kind}"
        headers[header] = str(remaining)
        if not allowed:
            secs = max(1, math.ceil(wait))
            op = kind[:-1]
            raise ArmError(
                429, "SubscriptionRequestsThrottled" if sub else "TenantRequestsThrottled",
                f"Number of '{op}' requests for {scope_name} '{sub or 'tenant'}' actor '{ctx.caller}' exceeded. "
                f"Please try again after '{secs}' seconds after additional tokens are available. "
                "Refer to https://aka.ms/arm-throttling for additional information.",
                headers={"Retry-After": str(secs), header: "0"},
            )

    async def _inject(self, request: web.Request, fault, headers: dict[str, str]) -> Reply | None:
        kind = fault.kind
        if kind == "slow":
            await asyncio.sleep(fault.delay_s)
            return Reply()
        if kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            return None
        if kind == "malformed":
            return Reply(200, _Malformed(), {})
        if kind == "429":
            return Reply(429, ArmError(429, "TooManyRequests", "The request was throttled (injected fault).").body(),
                         {"Retry-After": "1"})
        code = {"500": "InternalServerError", "502": "BadGateway", "503": "ServiceUnavailable"}[kind]
        return Reply(int(kind), ArmError(int(kind), code, f"The server had an error while processing the request (injected {kind}).").body(), {})


class _Malformed:
    """Marker: send a truncated JSON document."""


def reply_to_response(reply: Reply, headers: dict[str, str]) -> web.Response:
    headers = {**headers, **reply.headers}
    if isinstance(reply.body, _Malformed):
        return web.Response(status=reply.status, body=b'{"value": [{"id": "/subscriptions/', headers=headers,
                            content_type="application/json")
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    text = json.dumps(reply.body, ensure_ascii=False, separators=(",", ":"))
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in the fleet: only JSON's \uXXXX escape can carry it
        data = json.dumps(reply.body, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return web.Response(status=reply.status, body=data, headers=headers, content_type="application/json", charset="utf-8")


def caller_of(authorization: str) -> str:
    """A stable pseudo object id for the caller, derived from the token (the simulator accepts any token)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, authorization or "anonymous"))


_WRITE_TARGET = re.compile(
    r"/(start|poweroff|restart|deallocate|assesspatches|installpatches|runcommand|upgradeextensions|summarize|queryresults|backupstatus)$",
    re.IGNORECASE,
)


def write_target(path: str) -> str:
    """The resource a write acts on: the path without a trailing action or tags suffix."""
    p = path.rstrip("/")
    low = p.lower()
    if low.endswith("/providers/microsoft.resources/tags/default"):
        return p[: -len("/providers/Microsoft.Resources/tags/default")]
    return _WRITE_TARGET.sub("", p)


def not_routable(method: str, path: str, path_known: bool) -> ArmError:
    if path_known:
        return ArmError(405, "MethodNotAllowed", f"The requested resource does not support http method '{method}'.")
    m = re.search(r"/providers/([^/]+)/(.+)$", path, re.IGNORECASE)
    if m:
        ns, rest = m.group(1), m.group(2)
        rtype = "/".join(rest.split("/")[0::2])
        return ArmError(404, "InvalidResourceType",
                        f"The resource type '{rtype}' could not be found in the namespace '{ns}' for api version.")
    return ArmError(404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'.")


# ---- running it ------------------------------------------------------------------------------


class RunningSimulator:
    """A simulator serving HTTPS on loopback from a background thread (tests, --demo)."""

    def __init__(self, sim: Simulator, *, host: str = "127.0.0.1", port: int = 0, ca_dir: str | Path) -> None:
        self.sim = sim
        self.host, self.port, self.ca_dir = host, port, Path(ca_dir)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.ca_path: Path | None = None

    @property
    def state(self) -> SimState:
        return self.sim.state

    async def start_async(self) -> None:
        from .tls import make_tls

        tls = make_tls(self.ca_dir)
        self.ca_path = tls.ca_path
        self._runner = web.AppRunner(self.sim.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=tls.server_context, backlog=1024)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        self.port = sock.getsockname()[1]
        self.base_url = f"https://{self.host}:{self.port}"

    async def stop_async(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.sim.log.close()

    def start_in_thread(self) -> RunningSimulator:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self.start_async())
            except BaseException as e:
                errors.append(e)
                ready.set()
                return
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self.stop_async())
            self.loop.close()

        self._thread = threading.Thread(target=run, name="wsam-sim", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn on the simulator's loop (to touch state safely from another thread)."""
        if self.loop is None:
            return fn()
        fut: asyncio.Future = asyncio.run_coroutine_threadsafe(_call(fn), self.loop)
        return fut.result(30)

    def stop(self) -> None:
        if self.loop is not None and self._thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
            self.loop = None


async def _call(fn: Callable[[], Any]) -> Any:
    return fn()


def graph_quota_headers(remaining: int, resets_after: float) -> dict[str, str]:
    return {"x-ms-user-quota-remaining": str(remaining), "x-ms-user-quota-resets-after": hhmmss(resets_after)}
