"""One transport for every call to ARM: a shared httpx.AsyncClient with retries, budgets and events.

Retries and throttling live here and only here (the SDK clients get ``retry_total=0`` and reach this
same client through ``HttpxAsyncTransport``), so the console can show "waiting 4 s: throttled by
subscription X" and two layers never retry the same request (research/sdk-integration.md §5).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

# Re-exported: these live in .common, importable without httpx.
from .common import ArmConnectionError as ArmConnectionError
from .common import ArmHttpError as ArmHttpError
from .common import TransportEvent as TransportEvent

log = logging.getLogger("wsam_tui.arm")

RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
IDEMPOTENT = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
_SUB = re.compile(r"/subscriptions/([^/?]+)", re.IGNORECASE)


@dataclass
class RetrySettings:
    max_attempts: int = 6
    max_retry_after_s: float = 60.0  # a server asking for longer is capped (azure-core would sleep it in full)
    backoff_base_s: float = 0.8
    backoff_max_s: float = 20.0
    jitter: float = 0.2


@dataclass
class _Budget:
    """A mirror of ARM's token bucket for one subscription and kind, corrected by the remaining-count headers."""

    capacity: float
    refill_per_s: float
    tokens: float
    updated: float

    def wait_time(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.refill_per_s)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.refill_per_s

    def spend(self) -> None:
        self.tokens -= 1

    def observe(self, remaining: int, now: float) -> None:
        self.tokens = min(self.tokens, float(remaining))
        self.updated = now


GRAPH_QUOTA, GRAPH_WINDOW_S = 15, 5.0  # Resource Graph: about 15 queries per 5 s per user (arm-api.md §5)
BUDGETS = {"reads": (250.0, 25.0), "writes": (200.0, 10.0), "deletes": (200.0, 10.0)}


@dataclass
class ArmTransport:
    """All HTTP to ARM. ``token_provider`` is an async callable returning a bearer token for the ARM scope:
    ``await token_provider()`` for the home tenant, ``await token_provider(tenant)`` for another one
    (``auth.TokenCache``). A token is issued for one tenant, so each request carries the token of its
    subscription's tenant (``tenant_of``, set by the inventory after listing subscriptions); a request
    naming no subscription (``/subscriptions``, ``/tenants``) carries the home tenant's. A subscription
    not in the map yet learns its tenant from ARM's 401 challenge (``wrong_tenant_challenge``)."""

    base_url: str
    token_provider: Callable[..., Any]
    verify: ssl.SSLContext | bool = True
    max_connections: int = 16
    timeout_s: float = 30.0
    retry: RetrySettings = field(default_factory=RetrySettings)
    on_event: Callable[[TransportEvent], None] | None = None
    user_agent: str = "wsam-tui"
    client: httpx.AsyncClient | None = None
    sleep: Callable[[float], Any] = asyncio.sleep
    tenant_of: dict[str, str] = field(default_factory=dict)  # lower-case subscription id -> tenant id
    # An endpoint that accepts any token (the simulator, by its metadata): one token serves every tenant,
    # so Resource Graph batches need not be cut per tenant (fewer queries against the quota).
    one_token_for_all_tenants: bool = False

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.client is None:
            self.client = httpx.AsyncClient(
                verify=self.verify,
                timeout=httpx.Timeout(self.timeout_s, connect=10.0),
                limits=httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections),
                headers={"User-Agent": self.user_agent},
            )
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self._budget_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._graph_lock = asyncio.Lock()
        self._graph_remaining = GRAPH_QUOTA
        self._graph_resets_at = 0.0
        self._graph_inflight = 0
        self._graph_min_rtt: float | None = None
        self.request_ids: list[str] = []  # recent request ids, newest last (bounded)
        self.stats = {"requests": 0, "retries": 0, "throttled": 0, "budget_waits": 0.0}

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    def _emit(self, kind: str, scope: str, seconds: float, message: str) -> None:
        if self.on_event is not None:
            try:
                self.on_event(TransportEvent(kind, scope, seconds, message))
            except Exception:  # a broken listener must not break a request
                log.exception("transport event listener failed")

    def set_tenants(self, tenant_of: dict[str, str]) -> None:
        """Which tenant each subscription belongs to (``tenantId`` of ``GET /subscriptions``)."""
        self.tenant_of.update({sub.lower(): tenant for sub, tenant in tenant_of.items() if tenant})

    def tenant_for(self, subscriptions: Sequence[str]) -> str | None:
        """The one tenant these subscriptions belong to; None (the home tenant) when unknown or mixed."""
        tenants = {self.tenant_of.get(s.lower()) for s in subscriptions}
        return tenants.pop() if len(tenants) == 1 else None

    async def token(self, tenant: str | None = None) -> str:
        return await (self.token_provider(tenant) if tenant else self.token_provider())

    def url(self, path_or_url: str) -> str:
        return path_or_url if path_or_url.startswith(("https://", "http://")) else f"{self.base_url}{path_or_url}"

    # ---- budgets ------------------------------------------------------------------------------------

    async def _wait_for_budget(self, subscription: str | None, kind: str) -> None:
        if not subscription:
            return
        key = (subscription.lower(), kind)
        if key not in self._budgets:
            cap, refill = BUDGETS[kind]
            self._budgets[key] = _Budget(cap, refill, cap, time.monotonic())
            self._budget_locks[key] = asyncio.Lock()
        budget = self._budgets[key]
        async with self._budget_locks[key]:
            wait = budget.wait_time(time.monotonic())
            if wait > 0:
                self.stats["budget_waits"] += wait
                if wait >= 0.5:
                    self._emit("budget-wait", f"subscription {subscription}", wait,
                               f"waiting {wait:.1f} s: {kind} budget of subscription {subscription} is spent")
                await self.sleep(wait)
                budget.wait_time(time.monotonic())
            budget.spend()

    def _observe_budget(self, subscription: str | None, kind: str, headers: httpx.Headers) -> None:
        if not subscription:
            return
        value = headers.get(f"x-ms-ratelimit-remaining-subscription-{kind}")
        budget = self._budgets.get((subscription.lower(), kind))
        if value is not None and budget is not None:
            with contextlib.suppress(ValueError):
                budget.observe(int(value), time.monotonic())

    async def _wait_for_graph_quota(self) -> None:
        """Mirror of the caller's Resource Graph quota: spend one per query, wait for the window to reset when
        spent. Headers correct the mirror (another process of the same user may share the quota)."""
        async with self._graph_lock:
            now = time.monotonic()
            if self._graph_resets_at and now >= self._graph_resets_at:
                self._graph_remaining, self._graph_resets_at = GRAPH_QUOTA, 0.0
            if self._graph_remaining <= 0:
                wait = (self._graph_resets_at or now + GRAPH_WINDOW_S) - now
                if wait > 0:
                    self.stats["budget_waits"] += wait
                    self._emit("budget-wait", "Resource Graph", wait, f"waiting {wait:.1f} s: Resource Graph quota is spent")
                    await self.sleep(wait)
                self._graph_remaining, self._graph_resets_at = GRAPH_QUOTA, 0.0
            self._graph_remaining -= 1
            self._graph_inflight += 1
            if not self._graph_resets_at:
                # The server's window opens when this query arrives: half a round trip from now.
                self._graph_resets_at = time.monotonic() + GRAPH_WINDOW_S + (self._graph_min_rtt or 0.1) / 2 + 0.02

    def _observe_graph_quota(self, headers: httpx.Headers) -> None:
        remaining = headers.get("x-ms-user-quota-remaining")
        resets = headers.get("x-ms-user-quota-resets-after")
        if remaining is None:
            return
        with contextlib.suppress(ValueError):
            h, m, sec = (int(x) for x in (resets or "0:0:0").split(":"))
            # The server's count is the truth; queries still in flight may not be in it yet.
            self._graph_remaining = int(remaining) - self._graph_inflight
            if not self._graph_resets_at:
                # Whole seconds only: the local window, opened at our first query, is more precise.
                self._graph_resets_at = time.monotonic() + h * 3600 + m * 60 + sec

    # ---- requests -----------------------------------------------------------------------------------

    async def request(self, method: str, path_or_url: str, *, params: dict[str, str] | None = None,
                      json_body: Any = None, idempotent: bool | None = None, tenant: str | None = None) -> httpx.Response:
        """Send with retries; returns a 2xx/3xx response or raises ArmHttpError / ArmConnectionError.
        The token is ``tenant``'s when given, else that of the subscription in the path (for Resource
        Graph: of the subscriptions in the body), else the home tenant's. A tenant whose token cannot be
        had fails the request with ``auth.TenantTokenError`` (an ArmHttpError, status 401)."""
        method = method.upper()
        url = self.url(path_or_url)
        is_graph = "/providers/microsoft.resourcegraph/" in url.lower()
        idempotent = (method in IDEMPOTENT or is_graph) if idempotent is None else idempotent
        m = _SUB.search(url)
        subscription = m.group(1) if m and not is_graph else None
        if tenant is None:
            if subscription:
                tenant = self.tenant_of.get(subscription.lower())
            elif is_graph and isinstance(json_body, dict) and isinstance(json_body.get("subscriptions"), list):
                tenant = self.tenant_for([s for s in json_body["subscriptions"] if isinstance(s, str)])
        kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method, "writes")
        content = None if json_body is None else json.dumps(json_body).encode()
        attempt = 0
        tenant_learned = False
        while True:
            attempt += 1
            token = await self.token(tenant)  # before the quota: a refused token must not hold a query slot
            if is_graph:
                await self._wait_for_graph_quota()
            else:
                await self._wait_for_budget(subscription, kind)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if content is not None:
                headers["Content-Type"] = "application/json"
            self.stats["requests"] += 1
            sent = time.monotonic()
            try:
                resp = await self.client.request(method, url, params=params, content=content, headers=headers)
            except (httpx.TransportError, ssl.SSLError) as e:
                if is_graph:
                    self._graph_inflight -= 1
                if attempt < self.retry.max_attempts and (idempotent or isinstance(e, httpx.ConnectError)):
                    delay = self._backoff(attempt)
                    self.stats["retries"] += 1
                    self._emit("retry", self._scope(subscription, is_graph), delay,
                               f"retrying in {delay:.1f} s: {type(e).__name__} talking to {self.base_url}")
                    await self.sleep(delay)
                    continue
                raise ArmConnectionError(0, type(e).__name__, f"cannot reach {self.base_url}: {e}", method=method, url=url) from e
            rid = resp.headers.get("x-ms-request-id", "")
            if rid:
                self.request_ids.append(rid)
                del self.request_ids[:-200]
            if is_graph:
                self._graph_inflight -= 1
                rtt = time.monotonic() - sent
                self._graph_min_rtt = rtt if self._graph_min_rtt is None else min(self._graph_min_rtt, rtt)
                self._observe_graph_quota(resp.headers)
            else:
                self._observe_budget(subscription, kind, resp.headers)
            if resp.status_code < 400:
                if not (idempotent and _json_cut_short(resp)):
                    return resp
                # A read answered with a body that is not JSON (cut short): sent again, as a 5xx would be.
                if attempt < self.retry.max_attempts:
                    delay = self._backoff(attempt) * (1 + random.uniform(0, self.retry.jitter))
                    self.stats["retries"] += 1
                    scope = self._scope(subscription, is_graph)
                    self._emit("retry", scope, delay, f"retrying in {delay:.1f} s: a malformed reply from {scope}")
                    await self.sleep(delay)
                    continue
                return resp  # out of attempts: parse_json says why
            right = wrong_tenant_challenge(resp) if not tenant_learned else None
            if right and right != (tenant or "").lower():
                # A subscription the map did not know (a depth read before the first refresh): ARM's
                # challenge names its tenant. Learn it and send once more with that tenant's token.
                tenant, tenant_learned = right, True
                if subscription:
                    self.tenant_of[subscription.lower()] = right
                continue
            retry_after = retry_after_seconds(resp.headers)
            retryable = resp.status_code in RETRY_STATUSES and (idempotent or resp.status_code == 429 or retry_after is not None)
            if retryable and attempt < self.retry.max_attempts:
                delay = min(retry_after, self.retry.max_retry_after_s) if retry_after is not None else self._backoff(attempt)
                delay *= 1 + random.uniform(0, self.retry.jitter)
                self.stats["retries"] += 1
                scope = self._scope(subscription, is_graph)
                if resp.status_code == 429:
                    self.stats["throttled"] += 1
                    self._emit("throttled", scope, delay, f"waiting {math.ceil(delay)} s: throttled by {scope}")
                else:
                    self._emit("retry", scope, delay, f"retrying in {delay:.1f} s: HTTP {resp.status_code} from {scope}")
                await self.sleep(delay)
                continue
            raise error_from_response(resp, method, url)

    def _backoff(self, attempt: int) -> float:
        return min(self.retry.backoff_max_s, self.retry.backoff_base_s * (2 ** (attempt - 1)))

    @staticmethod
    def _scope(subscription: str | None, is_graph: bool) -> str:
        if is_graph:
            return "Resource Graph"
        return f"subscription {subscription}" if subscription else "tenant"

    async def get_json(self, path_or_url: str, params: dict[str, str] | None = None, *, tenant: str | None = None) -> Any:
        resp = await self.request("GET", path_or_url, params=params, tenant=tenant)
        return parse_json(resp, "GET", self.url(path_or_url))

    async def post_json(self, path_or_url: str, body: Any, params: dict[str, str] | None = None, *,
                        tenant: str | None = None) -> Any:
        resp = await self.request("POST", path_or_url, params=params, json_body=body, tenant=tenant)
        return parse_json(resp, "POST", self.url(path_or_url))

    async def paged(self, path: str, params: dict[str, str], *, tenant: str | None = None):
        """Yield each page's ``value`` list, following absolute nextLinks."""
        url: str | None = path
        first = True
        while url:
            body = await self.get_json(url, params if first else None, tenant=tenant)
            first = False
            if not isinstance(body, dict) or not isinstance(body.get("value", []), list):
                raise ArmHttpError(200, "MalformedResponse", f"expected a list page from {url}", method="GET", url=url)
            yield body.get("value") or []
            url = body.get("nextLink") or body.get("@odata.nextLink")


_CHALLENGE_TENANT = re.compile(r'authorization_uri="https://[^/"]+/([0-9a-z.-]+)"', re.IGNORECASE)


def wrong_tenant_challenge(resp: httpx.Response) -> str | None:
    """The tenant a 401 InvalidAuthenticationTokenTenant asks for, from ARM's ``WWW-Authenticate``
    challenge (``Bearer authorization_uri="https://login.windows.net/{tenant}", error="invalid_token"``)."""
    if resp.status_code != 401:
        return None
    m = _CHALLENGE_TENANT.search(resp.headers.get("WWW-Authenticate", ""))
    tenant = m.group(1).lower() if m else None
    return tenant if tenant not in (None, "common", "organizations") else None


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


_PARSED = "wsam.json"  # resp.extensions key: the body as ``_json_cut_short`` parsed it (parsed once)


def _json_cut_short(resp: httpx.Response) -> bool:
    """A JSON reply whose body does not parse; the parsed body is kept for ``parse_json``."""
    if not resp.content or "json" not in resp.headers.get("content-type", "json").lower():
        return False
    try:
        resp.extensions[_PARSED] = resp.json()
    except ValueError:
        return True
    return False


def parse_json(resp: httpx.Response, method: str, url: str) -> Any:
    if not resp.content:
        return None
    if _PARSED in resp.extensions:
        return resp.extensions[_PARSED]
    try:
        return resp.json()
    except ValueError:
        raise ArmHttpError(resp.status_code, "MalformedResponse",
                           f"the response was not valid JSON ({len(resp.content)} bytes)",
                           request_id=resp.headers.get("x-ms-request-id", ""), method=method, url=url) from None


def error_from_response(resp: httpx.Response, method: str, url: str) -> ArmHttpError:
    code, message, body = f"HTTP{resp.status_code}", resp.reason_phrase or "error", None
    try:
        body = resp.json()
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
            details = err.get("details")
            if isinstance(details, list) and details:
                extra = "; ".join(str(d.get("message", "")) for d in details if isinstance(d, dict) and d.get("message"))
                if extra:
                    message = f"{message} ({extra})"
    except ValueError:
        pass
    return ArmHttpError(resp.status_code, code, message, request_id=resp.headers.get("x-ms-request-id", ""),
                        correlation_id=resp.headers.get("x-ms-correlation-request-id", ""), method=method, url=url, body=body)
