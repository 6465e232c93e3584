"""Credentials and clouds: which ARM endpoint, which token scope, which credential.

An explicit chain, in a predictable order (DefaultAzureCredential probes IMDS first and changes order
between versions; sdk-integration.md §7): the Azure CLI's login, then environment / workload /
managed identity when configured, then device code (works over SSH). ``--auth`` picks one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from azure.core.credentials import AccessToken

# Re-exported: these live in .common, importable without httpx or azure-core.
from .common import ArmHttpError as ArmHttpError
from .common import CredentialError as CredentialError
from .common import EndpointError as EndpointError
from .common import TenantTokenError as TenantTokenError
from .common import quiet_azure_logging as quiet_azure_logging

log = logging.getLogger("wsam_tui.arm")


@dataclass(frozen=True)
class Cloud:
    name: str
    arm_url: str
    scope: str
    authority: str


CLOUDS = {
    "AzureCloud": Cloud("AzureCloud", "https://management.azure.com", "https://management.azure.com/.default",
                        "login.microsoftonline.com"),
    "AzureUSGovernment": Cloud("AzureUSGovernment", "https://management.usgovcloudapi.net",
                               "https://management.core.usgovcloudapi.net/.default", "login.microsoftonline.us"),
    "AzureChinaCloud": Cloud("AzureChinaCloud", "https://management.chinacloudapi.cn",
                             "https://management.chinacloudapi.cn/.default", "login.chinacloudapi.cn"),
}
AUTH_CHOICES = ("cli", "device-code", "env", "managed-identity", "static")
# A signed-in user reaches subscriptions in several tenants (guest accounts, several directories): each
# credential may be asked for a token of any of them (``get_token(scope, tenant_id=T)``). A managed
# identity lives in one tenant and ignores the tenant asked for.
ANY_TENANT = ["*"]


@dataclass(frozen=True)
class EndpointInfo:
    arm_url: str
    scope: str
    accepts_any_token: bool
    authority: str | None = None


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext | bool:
    if not ca_bundle:
        return True
    if not os.path.isfile(ca_bundle):
        raise EndpointError(f"--ca-bundle {ca_bundle}: no such file")
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except ssl.SSLError as e:
        raise EndpointError(f"--ca-bundle {ca_bundle}: not a PEM certificate bundle ({e})") from e


async def discover_endpoint(url: str, verify: ssl.SSLContext | bool) -> EndpointInfo:
    """Read ARM's /metadata/endpoints, as the az CLI does for a custom cloud (Azure Stack Hub, the simulator)."""
    url = url.rstrip("/")
    try:
        async with httpx.AsyncClient(verify=verify, timeout=15) as client:
            resp = await client.get(f"{url}/metadata/endpoints", params={"api-version": "2015-01-01"})
    except (httpx.HTTPError, ssl.SSLError) as e:
        raise EndpointError(f"cannot reach {url}/metadata/endpoints: {e}") from e
    if resp.status_code != 200:
        raise EndpointError(f"{url}/metadata/endpoints answered HTTP {resp.status_code}")
    try:
        doc = resp.json()
        audiences = (doc.get("authentication") or {}).get("audiences") or []
        login = (doc.get("authentication") or {}).get("loginEndpoint")
        sim = doc.get("wsamSimulator") or {}
    except (ValueError, AttributeError) as e:
        raise EndpointError(f"{url}/metadata/endpoints is not an endpoints document: {e}") from e
    audience = str(audiences[0]) if audiences else "https://management.azure.com/"
    scope = audience.rstrip("/") + "/.default"
    return EndpointInfo(arm_url=url, scope=scope, accepts_any_token=bool(sim.get("acceptsAnyToken")), authority=login)


class StaticTokenCredential:
    """A fixed bearer token (``--auth static`` with WSAM_TOKEN, or an endpoint that accepts any token)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> StaticTokenCredential:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        pass


class ThreadedCredential:
    """Runs a sync credential (device code has no async variant) in a thread so the loop never blocks."""

    def __init__(self, sync_credential: Any) -> None:
        self._cred = sync_credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return await asyncio.to_thread(self._cred.get_token, *scopes, **kwargs)

    async def close(self) -> None:
        close = getattr(self._cred, "close", None)
        if close:
            await asyncio.to_thread(close)

    async def __aenter__(self) -> ThreadedCredential:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


@dataclass
class ChainedCredential:
    """Try each (name, factory, fix) in order; remember the first that works."""

    links: list[tuple[str, Callable[[], Any], str]]
    chosen: str | None = None
    _active: Any = None
    attempts: list[tuple[str, str, str]] = field(default_factory=list)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self._active is not None:
            return await self._active.get_token(*scopes, **kwargs)
        self.attempts = []
        for name, factory, fix in self.links:
            try:
                cred = factory()
                token = await cred.get_token(*scopes, **kwargs)
            except Exception as e:  # each failure is reported, none is fatal until all have failed
                self.attempts.append((name, first_line(e), fix))
                continue
            self._active, self.chosen = cred, name
            return token
        raise CredentialError(self.attempts)

    async def close(self) -> None:
        if self._active is not None and hasattr(self._active, "close"):
            await self._active.close()


def first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def build_credential(auth: str | None, *, tenant: str | None, cloud: Cloud, interactive: bool | None = None) -> Any:
    """The credential for --auth (or the default chain)."""
    from azure.identity import AzureAuthorityHosts  # noqa: F401  (import here: identity costs ~200 ms)

    interactive = sys.stdin.isatty() and sys.stderr.isatty() if interactive is None else interactive

    def static() -> Any:
        token = os.environ.get("WSAM_TOKEN", "")
        if not token:
            raise RuntimeError("WSAM_TOKEN is not set")
        return StaticTokenCredential(token)

    def cli() -> Any:
        from azure.identity.aio import AzureCliCredential

        return AzureCliCredential(tenant_id=tenant or "", additionally_allowed_tenants=ANY_TENANT)

    def env() -> Any:
        from azure.identity.aio import EnvironmentCredential

        return EnvironmentCredential(additionally_allowed_tenants=ANY_TENANT)

    def workload() -> Any:
        from azure.identity.aio import WorkloadIdentityCredential

        kwargs: dict[str, Any] = {"tenant_id": tenant} if tenant else {}
        return WorkloadIdentityCredential(additionally_allowed_tenants=ANY_TENANT, **kwargs)

    def managed() -> Any:
        from azure.identity.aio import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID"))

    def device_code() -> Any:
        from azure.identity import DeviceCodeCredential

        def prompt(uri: str, code: str, expires_on: Any) -> None:
            print(f"To sign in, open {uri} and enter the code {code}", file=sys.stderr, flush=True)

        kwargs: dict[str, Any] = {"prompt_callback": prompt, "authority": cloud.authority,
                                  "additionally_allowed_tenants": ANY_TENANT}
        if tenant:
            kwargs["tenant_id"] = tenant
        return ThreadedCredential(DeviceCodeCredential(**kwargs))

    links = {
        "static": ("static token (WSAM_TOKEN)", static, "export WSAM_TOKEN=<a bearer token for the ARM audience>"),
        "cli": ("Azure CLI (az login)", cli, "run `az login` (over SSH: `az login --use-device-code`), or pick another --auth"),
        "env": ("environment (service principal)", env,
                "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH)"),
        "workload": ("workload identity", workload, "set AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID and AZURE_TENANT_ID"),
        "managed-identity": ("managed identity", managed, "run on an Azure VM or Arc server with a managed identity"),
        "device-code": ("device code", device_code, "run in a terminal, or pick another --auth"),
    }
    if auth:
        if auth not in AUTH_CHOICES:
            raise ValueError(f"--auth must be one of {', '.join(AUTH_CHOICES)}")
        return ChainedCredential([links[auth]])
    chain = [links["cli"]]
    if os.environ.get("AZURE_CLIENT_ID") and (os.environ.get("AZURE_CLIENT_SECRET") or os.environ.get("AZURE_CLIENT_CERTIFICATE_PATH")):
        chain.append(links["env"])
    if os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
        chain.append(links["workload"])
    if os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT") or os.environ.get("WSAM_USE_MANAGED_IDENTITY"):
        chain.append(links["managed-identity"])
    if interactive:
        chain.append(links["device-code"])
    return ChainedCredential(chain)


class TokenCache:
    """An async token provider for the transport: one token per (tenant, scope), refreshed 5 minutes before
    expiry, kept in memory only. ``await cache()`` is the home tenant's (``--tenant``, or the credential's
    default); ``await cache(tenant)`` is that tenant's. A tenant whose token fails is not asked again for
    ``retry_failed_after_s`` (each ask may spawn ``az`` or prompt): its requests fail at once with the
    same ``TenantTokenError``."""

    def __init__(self, credential: Any, scope: str, *, retry_failed_after_s: float = 300.0) -> None:
        self.credential, self.scope = credential, scope
        self.retry_failed_after_s = retry_failed_after_s
        self._tokens: dict[str | None, AccessToken] = {}
        self._failed: dict[str, tuple[float, str]] = {}  # tenant -> (ask again after, monotonic; reason)
        self._locks: dict[str | None, asyncio.Lock] = {}
        self.asked: list[str | None] = []  # tenants asked of the credential, in order (None: home)

    async def __call__(self, tenant: str | None = None) -> str:
        key = tenant.lower() if tenant else None
        token = self._tokens.get(key)
        if token is not None and token.expires_on - 300 > time.time():
            return token.token
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key is not None and key in self._failed:
                retry_at, reason = self._failed[key]
                if time.monotonic() < retry_at:
                    raise TenantTokenError(key, reason)
                del self._failed[key]
            token = self._tokens.get(key)
            if token is None or token.expires_on - 300 <= time.time():
                self.asked.append(key)
                if key is None:
                    token = await self.credential.get_token(self.scope)
                else:
                    try:
                        token = await self.credential.get_token(self.scope, tenant_id=key)
                    except Exception as e:  # one tenant's refusal is that tenant's failure, never the fleet's
                        reason = _credential_reason(e)
                        self._failed[key] = (time.monotonic() + self.retry_failed_after_s, reason)
                        raise TenantTokenError(key, reason) from e
                self._tokens[key] = token
            return token.token


def _credential_reason(e: BaseException) -> str:
    if isinstance(e, CredentialError):
        return "; ".join(f"{name}: {what}" for name, what, _ in e.attempts) or "no credential worked"
    return first_line(e)
