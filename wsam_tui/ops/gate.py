"""The one write gate: every request the engine sends goes through ``WriteGate.send``.

Read-only mode (``--readonly``, the config's ``readonly = true``) removes actions from the menus, and
this gate refuses any write that reaches it anyway, so no code path can write by forgetting a check.
Reads (GET, HEAD) pass: tracking an operation and re-reading a server are reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from ..arm.transport import ArmTransport

READ_METHODS = frozenset({"GET", "HEAD"})


class ReadOnlyError(PermissionError):
    """A write was attempted in read-only mode; nothing was sent."""


class WriteGate:
    def __init__(self, transport: ArmTransport, *, readonly: bool = False) -> None:
        self.transport = transport
        self.readonly = readonly
        self.refused = 0  # writes refused (shown by a UI; asserted by tests)

    def check(self, method: str, path: str = "") -> None:
        if self.readonly and method.upper() not in READ_METHODS:
            self.refused += 1
            raise ReadOnlyError(f"read-only mode: refused {method.upper()} {path}".rstrip())

    async def send(self, method: str, path: str, *, api_version: str, body: Any = None,
                   params: dict[str, str] | None = None, idempotent: bool | None = None) -> httpx.Response:
        """``idempotent`` tells the transport whether a request that may have arrived can be sent again."""
        self.check(method, path)
        query = {"api-version": api_version, **(params or {})}
        return await self.transport.request(method, path, params=query, json_body=body, idempotent=idempotent)

    async def read(self, url_or_path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return await self.transport.request("GET", url_or_path, params=params)
