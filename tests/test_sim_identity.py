"""The simulator's identity endpoint and endpoint metadata (wsam_tui/sim/identity.py): azure-identity's own
credentials sign in against it with nothing outside the machine, and ARM in tokens-per-tenant mode reads the tenant
from the tokens it issues (and refuses any other)."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time

import httpx
import pytest
from azure.identity import ClientSecretCredential, DeviceCodeCredential, ManagedIdentityCredential

from tests.fleetbuilder import scenario_fleet

ARM_SCOPE = "https://management.azure.com/.default"


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def per_tenant_sim(make_sim):
    fleet = scenario_fleet()
    fleet.setdefault("simulation", {}).setdefault("access", {})["tokensPerTenant"] = True
    return make_sim(fleet, throttle=False, graph_quota=False)


def arm_get(running, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{running.base_url}{path}", headers={"Authorization": f"Bearer {token}"},
                     verify=ssl.create_default_context(cafile=str(running.ca_path)), timeout=30)


def identity_of(running):
    return running.sim.identity


def test_metadata_answers_each_client_the_format_it_asks_for(scenario_sim):
    verify = ssl.create_default_context(cafile=str(scenario_sim.ca_path))
    base = scenario_sim.base_url

    def get(version: str, path: str = "/metadata/endpoints") -> object:
        reply = httpx.get(f"{base}{path}?api-version={version}", verify=verify, timeout=30)
        assert reply.status_code == 200, reply.text
        return reply.json()

    current = get("2022-09-01", "//metadata/endpoints")  # az glues "URL/" and "/metadata/…"
    assert isinstance(current, dict)
    # the keys az 2.91 cannot do without (research/arm-metadata-endpoints.md), and a loopback login
    assert current["name"] and isinstance(current["suffixes"], dict) and current["suffixes"]
    assert current["authentication"]["loginEndpoint"] == f"{base}/"
    assert current["authentication"]["audiences"][0] == "https://management.azure.com/"
    assert current["resourceManager"] == f"{base}/"
    listed = get("2019-05-01")
    assert isinstance(listed, list) and listed[0]["name"] == current["name"]
    stack = get("2015-01-01")
    assert isinstance(stack, dict) and "galleryEndpoint" in stack and "suffixes" not in stack


def test_a_service_principal_signs_in_and_arm_reads_its_tenant(per_tenant_sim):
    env = identity_of(per_tenant_sim).environment(per_tenant_sim.base_url)
    credential = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                        authority=per_tenant_sim.base_url, disable_instance_discovery=True,
                                        connection_verify=str(per_tenant_sim.ca_path))
    token = credential.get_token(ARM_SCOPE).token
    claims = claims_of(token)
    assert claims["tid"] == env["AZURE_TENANT_ID"] and claims["appid"] == env["AZURE_CLIENT_ID"]
    assert claims["exp"] > time.time()
    subscriptions = arm_get(per_tenant_sim, "/subscriptions?api-version=2022-12-01", token)
    assert subscriptions.status_code == 200, subscriptions.text
    assert {s["tenantId"] for s in subscriptions.json()["value"]} == {env["AZURE_TENANT_ID"]}


def test_a_wrong_secret_is_refused_as_entra_refuses_it(per_tenant_sim):
    env = identity_of(per_tenant_sim).environment(per_tenant_sim.base_url)
    reply = httpx.post(f"{per_tenant_sim.base_url}/{env['AZURE_TENANT_ID']}/oauth2/v2.0/token",
                       data={"grant_type": "client_credentials", "client_id": env["AZURE_CLIENT_ID"],
                             "client_secret": "not-it", "scope": ARM_SCOPE},
                       verify=ssl.create_default_context(cafile=str(per_tenant_sim.ca_path)), timeout=30)
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_client" and "AADSTS7000215" in reply.json()["error_description"]


def test_arm_refuses_a_forged_or_foreign_token_per_tenant(per_tenant_sim):
    env = identity_of(per_tenant_sim).environment(per_tenant_sim.base_url)
    credential = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                        authority=per_tenant_sim.base_url, disable_instance_discovery=True,
                                        connection_verify=str(per_tenant_sim.ca_path))
    header, payload, signature = credential.get_token(ARM_SCOPE).token.split(".")
    forged_claims = {**claims_of(f"{header}.{payload}.{signature}"), "exp": int(time.time()) + 86400 * 365}
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    reply = arm_get(per_tenant_sim, "/subscriptions?api-version=2022-12-01", f"{header}.{forged}.{signature}")
    assert reply.status_code == 401 and "signature" in reply.json()["error"]["message"]
    reply = arm_get(per_tenant_sim, "/subscriptions?api-version=2022-12-01", "eyJhbGciOiJub25lIn0.e30.")
    assert reply.status_code == 401 and reply.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_managed_identity_by_the_app_service_protocol(per_tenant_sim, monkeypatch):
    env = identity_of(per_tenant_sim).environment(per_tenant_sim.base_url)
    monkeypatch.setenv("IDENTITY_ENDPOINT", env["IDENTITY_ENDPOINT"])
    monkeypatch.setenv("IDENTITY_HEADER", env["IDENTITY_HEADER"])
    token = ManagedIdentityCredential(connection_verify=str(per_tenant_sim.ca_path)).get_token(ARM_SCOPE).token
    assert claims_of(token)["tid"] == env["AZURE_TENANT_ID"]
    assert arm_get(per_tenant_sim, "/subscriptions?api-version=2022-12-01", token).status_code == 200
    refused = httpx.get(env["IDENTITY_ENDPOINT"], params={"resource": "https://management.azure.com/",
                                                          "api-version": "2019-08-01"},
                        headers={"X-IDENTITY-HEADER": "guess"},
                        verify=ssl.create_default_context(cafile=str(per_tenant_sim.ca_path)), timeout=30)
    assert refused.status_code == 400 and "access_token" not in refused.text


def test_device_code_waits_for_the_person_then_signs_in(per_tenant_sim):
    identity = identity_of(per_tenant_sim)
    shown: list[str] = []
    approved = threading.Event()

    def prompt(uri: str, code: str, expires_on) -> None:
        shown.append(uri)
        # the person opens the page and types the code (after the device has started polling)
        def enter() -> None:
            time.sleep(1.5)
            reply = httpx.post(uri, data={"code": code}, timeout=30,
                               verify=ssl.create_default_context(cafile=str(per_tenant_sim.ca_path)))
            assert reply.status_code == 200
            approved.set()

        threading.Thread(target=enter, daemon=True).start()

    credential = DeviceCodeCredential(tenant_id=identity.home_tenant, authority=per_tenant_sim.base_url,
                                      disable_instance_discovery=True, prompt_callback=prompt,
                                      connection_verify=str(per_tenant_sim.ca_path), timeout=60)
    token = credential.get_token(ARM_SCOPE).token
    assert approved.is_set() and shown == [f"{per_tenant_sim.base_url}/devicelogin"]
    claims = claims_of(token)
    assert claims["upn"] == identity.operator[1] and claims["tid"] == identity.home_tenant
    assert arm_get(per_tenant_sim, "/subscriptions?api-version=2022-12-01", token).status_code == 200
