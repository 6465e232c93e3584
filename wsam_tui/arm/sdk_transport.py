"""An azure-core async transport over our shared httpx.AsyncClient.

azure-core ships no httpx transport, and azure-core-experimental's (1.0.0b4) never reads the body of
a non-streamed response, so every get/list fails with ResponseNotReadError (sdk-integration.md §2).
This adapter lets the SDK clients (used for per-server detail and long-running actions) share the
connection pool, TLS and proxy settings of the raw inventory path.
"""

from __future__ import annotations

from typing import Any

import httpx
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest._http_response_impl_async import AsyncHttpResponseImpl


class _StreamDownload:
    def __init__(self, pipeline: Any, response: _HttpxResponse, *, decompress: bool = True, **_: Any) -> None:
        self.response = response
        inner: httpx.Response = response.internal_response
        self._chunks = inner.aiter_bytes() if decompress else inner.aiter_raw()

    def __aiter__(self) -> _StreamDownload:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            await self.response.internal_response.aclose()
            raise


class _HttpxResponse(AsyncHttpResponseImpl):
    def __init__(self, request: Any, inner: httpx.Response) -> None:
        super().__init__(request=request, internal_response=inner, status_code=inner.status_code, headers=inner.headers,
                         reason=inner.reason_phrase, content_type=inner.headers.get("content-type"),
                         stream_download_generator=_StreamDownload)

    def body(self) -> bytes:
        return self._content if self._content is not None else self._internal_response.content

    async def load_body(self) -> None:
        # The step azure-core-experimental omits: read the body before the pipeline looks at it.
        self._content = await self._internal_response.aread()

    async def close(self) -> None:
        if not self.is_closed:
            self._is_closed = True
            await self._internal_response.aclose()


class HttpxAsyncTransport(AsyncHttpTransport):
    """Sends azure-core requests through an existing httpx.AsyncClient (not owned: never closed here)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def __aenter__(self) -> HttpxAsyncTransport:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        pass

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def send(self, request: Any, *, stream: bool = False, **kwargs: Any) -> _HttpxResponse:
        connect_timeout = kwargs.pop("connection_timeout", None)
        read_timeout = kwargs.pop("read_timeout", None)
        timeout: Any = httpx.USE_CLIENT_DEFAULT
        if connect_timeout or read_timeout:
            timeout = httpx.Timeout(read_timeout or 30.0, connect=connect_timeout or 10.0)
        built = self.client.build_request(request.method, request.url, headers=list(request.headers.items()),
                                          content=request.content, timeout=timeout)
        try:
            response = _HttpxResponse(request, await self.client.send(built, stream=True))
            if not stream:
                await response.load_body()
            return response
        except (httpx.ReadTimeout, httpx.ProtocolError, httpx.ReadError) as e:
            raise ServiceResponseError(e, error=e) from e
        except httpx.RequestError as e:
            raise ServiceRequestError(e, error=e) from e
