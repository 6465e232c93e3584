"""The simulator's identity endpoint: enough of Microsoft Entra ID (OAuth2 v2) and of the App Service
managed-identity protocol for the Azure CLI, MSAL and azure-identity to sign in against the simulator, on its own
loopback listener, with nothing outside the machine.

Served under the simulator's base URL, which its /metadata/endpoints advertises as ``authentication.loginEndpoint``
(MSAL takes the first path segment of an authority as the tenant, so the authority is ``{base}/{tenant}``):

- ``GET  /{tenant}/v2.0/.well-known/openid-configuration`` and ``GET /{tenant}/discovery/v2.0/keys`` (JWKS);
- ``POST /{tenant}/oauth2/v2.0/token``: ``client_credentials`` (the simulator's service principal),
  ``urn:ietf:params:oauth:grant-type:device_code`` and ``refresh_token``;
- ``POST /{tenant}/oauth2/v2.0/devicecode``, approved by a person at ``{base}/devicelogin`` (a form, or
  ``POST /devicelogin`` with ``code=``), as at microsoft.com/devicelogin;
- ``GET  /msi/token`` (``IDENTITY_ENDPOINT``; the ``X-IDENTITY-HEADER`` must carry ``IDENTITY_HEADER``).

Tokens are JWTs (RS256, signed with a key made when first needed and published in the JWKS) carrying ``tid``,
``oid``, ``appid`` or ``upn``, ``aud``, ``iss`` and ``exp`` as Entra's do; with ``tokensPerTenant`` the ARM side
checks the signature and reads the tenant from ``tid``. Errors are Entra's shape: ``{"error",
"error_description": "AADSTS…"}``. Secrets (client secret, identity header, refresh tokens) never reach the
request log, which records paths only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

TOKEN_LIFETIME_S = 3599
DEVICE_CODE_LIFETIME_S = 900
DEVICE_CODE_INTERVAL_S = 1  # Entra says 5; the simulator answers sooner so that sign-in in tests is quick
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Entra's multi-tenant aliases: a user signing in through them lands in their home tenant
ALIASES = ("organizations", "common")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _guid(*parts: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256("|".join(parts).encode()).digest()[:16], version=4))


class TokenRejected(Exception):
    """Why a bearer token is not one this identity endpoint issued (or no longer valid)."""


@dataclass
class _DeviceCode:
    client_id: str
    tenant: str
    scope: str
    user_code: str
    expires_at: float
    approved: bool = False


@dataclass
class Identity:
    """The principals and the signing key; ``tenants`` are the fleet's tenant ids (lower case)."""

    tenants: list[str]
    domains: dict[str, str]  # tenant -> its default domain, for user names
    client_id: str = ""
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    identity_header: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    _key: Any = None
    _kid: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _device_codes: dict[str, _DeviceCode] = field(default_factory=dict)
    _refresh_tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # token -> (client id, user oid)

    def __post_init__(self) -> None:
        self.client_id = self.client_id or _guid("wsam-sim-service-principal", *self.tenants)

    @classmethod
    def for_tenants(cls, tenants: list[dict]) -> Identity:
        ids = [str(t.get("tenantId", "")).lower() for t in tenants if t.get("tenantId")]
        domains = {str(t.get("tenantId", "")).lower(): str(t.get("defaultDomain") or f"{t.get('tenantId')}.onmicrosoft.com")
                   for t in tenants if t.get("tenantId")}
        return cls(tenants=ids, domains=domains)

    # ---- who the principals are --------------------------------------------------------------

    @property
    def home_tenant(self) -> str:
        return self.tenants[0] if self.tenants else "00000000-0000-0000-0000-000000000000"

    @property
    def operator(self) -> tuple[str, str]:
        """The person who signs in by device code: (object id, user principal name), a member of the first
        tenant and a guest in the others (as operators of several directories are)."""
        return _guid("wsam-sim-operator", self.home_tenant), f"operator@{self.domains.get(self.home_tenant, 'contoso.com')}"

    @property
    def managed_identity(self) -> tuple[str, str]:
        """(client id, object id) of the system-assigned identity of the machine the caller runs on."""
        return _guid("wsam-sim-managed-identity-client", self.home_tenant), _guid("wsam-sim-managed-identity", self.home_tenant)

    def environment(self, base_url: str) -> dict[str, str]:
        """What `wsam-tui sim` prints so that az, azure-identity and scripts can sign in."""
        return {"AZURE_TENANT_ID": self.home_tenant, "AZURE_CLIENT_ID": self.client_id,
                "AZURE_CLIENT_SECRET": self.client_secret, "AZURE_AUTHORITY_HOST": base_url,
                "IDENTITY_ENDPOINT": f"{base_url}/msi/token", "IDENTITY_HEADER": self.identity_header}

    # ---- tokens ----------------------------------------------------------------------------------

    def _signing_key(self) -> Any:
        with self._lock:
            if self._key is None:
                from cryptography.hazmat.primitives.asymmetric import rsa

                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                self._kid = _b64url(hashlib.sha256(str(self._key.public_key().public_numbers().n).encode()).digest()[:12])
            return self._key

    def jwks(self) -> dict:
        numbers = self._signing_key().public_key().public_numbers()

        def as_b64(n: int) -> str:
            return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self._kid, "x5t": self._kid, "n": as_b64(numbers.n),
                          "e": as_b64(numbers.e), "alg": "RS256"}]}

    def _jwt(self, claims: dict) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        key = self._signing_key()
        header = {"typ": "JWT", "alg": "RS256", "kid": self._kid, "x5t": self._kid}
        encoded = [_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)]
        signing_input = ".".join(encoded)
        signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def access_token(self, *, tenant: str, audience: str, subject: dict[str, str]) -> tuple[str, int]:
        now = int(time.time())
        claims = {"aud": audience, "iss": f"https://sts.windows.net/{tenant}/", "iat": now, "nbf": now,
                  "exp": now + TOKEN_LIFETIME_S, "tid": tenant, "ver": "1.0", "uti": secrets.token_urlsafe(16),
                  **subject}
        return self._jwt(claims), now + TOKEN_LIFETIME_S

    def verify(self, token: str) -> dict:
        """The claims of a token this endpoint issued and that has not expired; TokenRejected otherwise."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRejected("it is not a JWT")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError) as e:
            raise TokenRejected(f"it cannot be decoded ({e})") from e
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            raise TokenRejected("its header or claims are not those of an Entra token")
        key = self._signing_key()
        if header.get("kid") != self._kid:
            raise TokenRejected(f"its signing key '{header.get('kid')}' is not one this issuer publishes")
        try:
            key.public_key().verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"), padding.PKCS1v15(),
                                    hashes.SHA256())
        except InvalidSignature as e:
            raise TokenRejected("its signature does not verify") from e
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            raise TokenRejected("it has expired")
        return claims

    # ---- the endpoints ---------------------------------------------------------------------------

    def handles(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        if parts in (["msi", "token"], ["devicelogin"]):
            return True
        return len(parts) >= 3 and (parts[1:] == ["v2.0", ".well-known", "openid-configuration"]
                                    or parts[1:] == ["discovery", "v2.0", "keys"]
                                    or parts[1:3] == ["oauth2", "v2.0"])

    async def handle(self, request: web.Request, base_url: str) -> web.Response:
        parts = request.path.strip("/").split("/")
        form = {k: v[-1] for k, v in parse_qs((await request.read()).decode("utf-8", "replace")).items()}
        if parts == ["msi", "token"]:
            return self._managed_identity(request)
        if parts == ["devicelogin"]:
            return self._device_login(request.method, {**dict(request.query), **form})
        tenant = parts[0].lower()
        if tenant not in self.tenants and tenant not in ALIASES:
            return _oauth_error(400, "invalid_request",
                                f"AADSTS90002: Tenant '{parts[0]}' not found. Check to make sure you have the correct tenant ID "
                                "and are signing into the correct cloud.")
        rest = parts[1:]
        if rest == ["v2.0", ".well-known", "openid-configuration"] and request.method == "GET":
            return web.json_response(self._openid_configuration(base_url, tenant))
        if rest == ["discovery", "v2.0", "keys"] and request.method == "GET":
            return web.json_response(self.jwks())
        if rest == ["oauth2", "v2.0", "token"] and request.method == "POST":
            return self._token(tenant, form, base_url)
        if rest == ["oauth2", "v2.0", "devicecode"] and request.method == "POST":
            return self._device_code(tenant, form, base_url)
        return _oauth_error(404, "invalid_request", f"AADSTS900561: The endpoint only accepts POST or GET requests as documented "
                                                    f"({request.method} {request.path}).")

    def _openid_configuration(self, base_url: str, tenant: str) -> dict:
        issuer_tenant = self.home_tenant if tenant in ALIASES else tenant
        v2 = f"{base_url}/{tenant}/oauth2/v2.0"
        return {
            "token_endpoint": f"{v2}/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base_url}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base_url}/oidc/userinfo",
            "authorization_endpoint": f"{v2}/authorize",
            "device_authorization_endpoint": f"{v2}/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{v2}/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "tid", "oid", "upn",
                                 "preferred_username", "name"],
            "kerberos_endpoint": f"{base_url}/{tenant}/kerberos",
            "tenant_region_scope": "WW",
            "cloud_instance_name": base_url.split("://", 1)[-1],
            "cloud_graph_host_name": base_url.split("://", 1)[-1],
            "msgraph_host": base_url.split("://", 1)[-1],
        }

    def _token(self, tenant: str, form: dict[str, str], base_url: str) -> web.Response:
        grant = form.get("grant_type", "")
        scope = form.get("scope", "")
        audience = _audience_of(scope)
        if grant == "client_credentials":
            if tenant in ALIASES:
                return _oauth_error(400, "invalid_request", "AADSTS900023: Specified tenant identifier 'organizations' is "
                                                            "neither a valid DNS name, nor a valid external domain.")
            if form.get("client_id", "").lower() != self.client_id:
                return _oauth_error(400, "unauthorized_client",
                                    f"AADSTS700016: Application with identifier '{form.get('client_id', '')}' was not found in "
                                    f"the directory '{tenant}'.")
            if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
                return _oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret "
                                                           "being sent in the request is the client secret value, not the "
                                                           "client secret ID.")
            if audience is None:
                return _oauth_error(400, "invalid_scope", f"AADSTS1002012: The provided value for scope {scope} is not valid. "
                                                          "Client credential flows must have a scope value with /.default "
                                                          "suffixed to the resource identifier (application ID URI).")
            oid = _guid("wsam-sim-service-principal-object", tenant)
            token, _ = self.access_token(tenant=tenant, audience=audience,
                                         subject={"appid": self.client_id, "oid": oid, "sub": oid, "idtyp": "app"})
            return web.json_response({"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S,
                                      "ext_expires_in": TOKEN_LIFETIME_S, "access_token": token})
        if grant == DEVICE_CODE_GRANT:
            with self._lock:
                pending = self._device_codes.get(form.get("device_code", ""))
                if pending is None or pending.expires_at < time.time():
                    return _oauth_error(400, "expired_token", "AADSTS70020: The provided value for the input parameter "
                                                              "'device_code' is not valid. This device code has expired.")
                if not pending.approved:
                    return _oauth_error(400, "authorization_pending", "AADSTS70016: OAuth 2.0 device flow error. "
                                                                      "Authorization is pending. Continue polling.")
                del self._device_codes[form.get("device_code", "")]
            return self._user_tokens(pending.client_id, self.home_tenant if pending.tenant in ALIASES else pending.tenant,
                                     pending.scope, base_url)
        if grant == "refresh_token":
            with self._lock:
                holder = self._refresh_tokens.get(form.get("refresh_token", ""))
            if holder is None or holder[0] != form.get("client_id", "").lower():
                return _oauth_error(400, "invalid_grant", "AADSTS9002313: Invalid request. Request is malformed or invalid.")
            return self._user_tokens(holder[0], self.home_tenant if tenant in ALIASES else tenant, scope, base_url)
        return _oauth_error(400, "unsupported_grant_type",
                            f"AADSTS70003: The app requested an unsupported grant type '{grant}'.")

    def _user_tokens(self, client_id: str, tenant: str, scope: str, base_url: str) -> web.Response:
        oid, upn = self.operator
        audience = _audience_of(scope) or "00000003-0000-0000-c000-000000000000"  # Graph, as for openid-only scopes
        token, _ = self.access_token(tenant=tenant, audience=audience,
                                     subject={"oid": oid, "sub": oid, "upn": upn, "unique_name": upn, "name": "Operator",
                                              "appid": client_id, "idtyp": "user", "scp": "user_impersonation"})
        now = int(time.time())
        id_token = self._jwt({"aud": client_id, "iss": f"{base_url}/{tenant}/v2.0", "iat": now, "nbf": now,
                              "exp": now + TOKEN_LIFETIME_S, "name": "Operator", "oid": oid, "sub": oid,
                              "preferred_username": upn, "tid": tenant, "ver": "2.0"})
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh_tokens[refresh] = (client_id, oid)
        client_info = _b64url(json.dumps({"uid": oid, "utid": self.home_tenant}).encode())
        return web.json_response({"token_type": "Bearer", "scope": scope, "expires_in": TOKEN_LIFETIME_S,
                                  "ext_expires_in": TOKEN_LIFETIME_S, "access_token": token, "refresh_token": refresh,
                                  "id_token": id_token, "client_info": client_info})

    def _device_code(self, tenant: str, form: dict[str, str], base_url: str) -> web.Response:
        if not form.get("client_id"):
            return _oauth_error(400, "invalid_request", "AADSTS900144: The request body must contain the following "
                                                        "parameter: 'client_id'.")
        device_code = secrets.token_urlsafe(32)
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        with self._lock:
            self._device_codes[device_code] = _DeviceCode(form["client_id"].lower(), tenant, form.get("scope", ""),
                                                          user_code, time.time() + DEVICE_CODE_LIFETIME_S)
        verification = f"{base_url}/devicelogin"
        return web.json_response({
            "user_code": user_code, "device_code": device_code, "verification_uri": verification,
            "expires_in": DEVICE_CODE_LIFETIME_S, "interval": DEVICE_CODE_INTERVAL_S,
            "message": f"To sign in, use a web browser to open the page {verification} and enter the code {user_code} "
                       "to authenticate.",
        })

    def approve(self, user_code: str) -> bool:
        """A person entered ``user_code`` at the verification page: the device's next poll gets its tokens."""
        with self._lock:
            for pending in self._device_codes.values():
                if secrets.compare_digest(pending.user_code, user_code.strip().upper()) and pending.expires_at >= time.time():
                    pending.approved = True
                    return True
        return False

    def _device_login(self, method: str, fields: dict[str, str]) -> web.Response:
        code = fields.get("code", "")
        if method == "POST" or code:
            if self.approve(code):
                return web.Response(text=_page("You have signed in. You can close this window and return to the "
                                               "application."), content_type="text/html")
            return web.Response(status=400, text=_page("That code was not recognised or has expired. Try again.",
                                                       form=True), content_type="text/html")
        return web.Response(text=_page("Enter the code displayed on your device.", form=True), content_type="text/html")

    def _managed_identity(self, request: web.Request) -> web.Response:
        header = request.headers.get("X-IDENTITY-HEADER", "")
        if not header or not secrets.compare_digest(header, self.identity_header):
            return web.json_response({"statusCode": 400, "message": "The request is missing or has a wrong "
                                                                   "X-IDENTITY-HEADER."}, status=400)
        resource = request.query.get("resource", "")
        if not resource:
            return web.json_response({"statusCode": 400, "message": "Required query variable 'resource' is missing."},
                                     status=400)
        client_id, oid = self.managed_identity
        token, expires_on = self.access_token(tenant=self.home_tenant, audience=resource,
                                              subject={"appid": client_id, "oid": oid, "sub": oid, "idtyp": "app",
                                                       "xms_mirid": "/subscriptions/simulated/providers/managedIdentity"})
        return web.json_response({"access_token": token, "expires_on": str(expires_on), "resource": resource,
                                  "token_type": "Bearer", "client_id": client_id})


def _audience_of(scope: str) -> str | None:
    """The resource a ``…/.default`` scope names (``https://management.core.windows.net//.default``, as az asks,
    names ``https://management.core.windows.net/``)."""
    for item in scope.split():
        if item.endswith("/.default"):
            return item[: -len("/.default")]
    return None


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description, "error_codes": [
        int(description[6:description.index(":")]) if description.startswith("AADSTS") else 0],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()), "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4())}, status=status)


def _page(message: str, *, form: bool = False) -> str:
    body = f"<p>{html.escape(message)}</p>"
    if form:
        body += ('<form method="post" action="/devicelogin"><label>Code <input name="code" autofocus></label> '
                 '<button type="submit">Next</button></form>')
    return f"<!doctype html><title>wsam-tui simulator: sign in</title><h1>Sign in</h1>{body}"
