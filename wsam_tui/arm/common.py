"""The light part of the ARM layer: errors, transport events, logging set-up.

Importable without httpx or azure-core, so that the console draws its first frame from the cache before
it loads the HTTP stack (≈70 ms of imports it needs only when it connects). ``transport`` and ``auth``
re-export these names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any


class ArmHttpError(Exception):
    """A request that failed for good, with what ARM said and the ids to quote to support."""

    def __init__(self, status: int, code: str, message: str, *, request_id: str = "", correlation_id: str = "",
                 method: str = "", url: str = "", body: Any = None) -> None:
        self.status, self.code, self.message = status, code, message
        self.request_id, self.correlation_id = request_id, correlation_id
        self.method, self.url, self.body = method, url, body
        super().__init__(self.describe())

    def describe(self) -> str:
        rid = f" (request id {self.request_id})" if self.request_id else ""
        status = f"HTTP {self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}{rid}"


class ArmConnectionError(ArmHttpError):
    """ARM could not be reached (DNS, TLS, refused, reset, timeout) after the retries."""


class TenantTokenError(ArmHttpError):
    """No token could be had for one tenant (MFA, conditional access, consent, not signed in there): the
    requests of that tenant's subscriptions fail with it, the other tenants' go on."""

    def __init__(self, tenant: str, reason: str) -> None:
        self.tenant, self.reason = tenant, reason
        super().__init__(401, "TenantTokenUnavailable",
                         f"no token for tenant {tenant}: {reason} — sign in to that tenant (`az login --tenant {tenant}`, "
                         "or what the error asks for) and refresh; its subscriptions stay unknown until then")


class CredentialError(Exception):
    """No credential worked: says which were tried and how to fix each."""

    def __init__(self, attempts: list[tuple[str, str, str]]) -> None:
        self.attempts = attempts  # (credential, what happened, how to fix)
        lines = ["No Azure credential worked. Tried:"]
        for name, what, fix in attempts:
            lines.append(f"  - {name}: {what}\n      fix: {fix}")
        super().__init__("\n".join(lines))


class EndpointError(Exception):
    pass


@dataclass(frozen=True)
class TransportEvent:
    """What the transport is doing, for a status line: kind is 'throttled', 'retry', 'budget-wait' or 'error'."""

    kind: str
    scope: str  # "subscription <id>", "Resource Graph", "tenant"
    seconds: float
    message: str


def quiet_azure_logging(path: str | None = None) -> None:
    """SDK warnings on stderr corrupt a full-screen UI: route the `azure` logger to a file (or nowhere)."""
    logger = logging.getLogger("azure")
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
    handler: logging.Handler = logging.FileHandler(path, encoding="utf-8") if path else logging.NullHandler()
    logger.addHandler(handler)
