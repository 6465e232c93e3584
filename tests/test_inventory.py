"""The inventory engine end to end: Resource Graph → store → matrix, online and offline, through `wsam-tui export`."""

from __future__ import annotations

import csv
import io
import json
import os
import pickle
import stat

import pytest

from tests.fleetbuilder import SUB_A, SUB_DENIED, scenario_fleet
from wsam_tui.cli import main
from wsam_tui.fleet.capabilities import CATALOG
from wsam_tui.store.cache import Store


def export(capsys, running, cache_dir, *extra: str) -> tuple[int, str, str]:
    args = ["export", "--cache-dir", str(cache_dir), *extra]
    if running is not None:
        args += ["--endpoint", running.base_url, "--ca-bundle", str(running.ca_path)]
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def generated_fleet():
    from wsam_tui.sim.fleetgen import generate_fleet

    return generate_fleet(size=150, seed=5)


def test_online_export_has_every_server_and_every_column(make_sim, generated_fleet, tmp_path, capsys):
    running = make_sim(generated_fleet, page_size=50)
    code, out, err = export(capsys, running, tmp_path / "cache", "-o", "csv")
    assert code == 0, err
    rows = rows_of(out)
    expected = {r["id"].lower() for r in generated_fleet["resources"]
                if r["type"] in ("Microsoft.Compute/virtualMachines", "Microsoft.HybridCompute/machines")}
    assert {r["id"].lower() for r in rows} == expected
    for cap in CATALOG:
        assert cap.id in rows[0], f"column {cap.id} missing"
        assert {r[cap.id] for r in rows} <= {"on", "partial", "off", "n/a", "unknown"}
    assert all(r[c.id] != "unknown" for r in rows for c in CATALOG if c.id != "inguest"), "every source was fetched"


def test_offline_export_equals_online_export(make_sim, generated_fleet, tmp_path, capsys):
    running = make_sim(generated_fleet)
    code, online, _ = export(capsys, running, tmp_path / "cache", "-o", "json")
    assert code == 0
    running.stop()
    code, offline, err = export(capsys, None, tmp_path / "cache", "-o", "json", "--offline")
    assert code == 0
    assert "offline; data as of" in err
    assert json.loads(offline)["servers"] == json.loads(online)["servers"]


def test_offline_with_empty_cache_says_so(tmp_path, capsys):
    code, out, err = export(capsys, None, tmp_path / "empty", "--offline")
    assert code == 4
    assert "cache is empty" in err and out == ""


def test_denied_subscription_gives_unknown_cells_and_the_rest_of_the_fleet(make_sim, tmp_path, capsys):
    running = make_sim(scenario_fleet(), graph_quota=False, throttle=False)
    code, out, err = export(capsys, running, tmp_path / "cache", "-o", "json")
    assert code == 3, "a partial result must be visible to scripts"
    assert SUB_DENIED in err
    servers = json.loads(out)["servers"]
    assert {s["subscriptionId"].lower() for s in servers} >= {SUB_A}
    assert not any(s["subscriptionId"].lower() == SUB_DENIED for s in servers), \
        "Resource Graph gave no rows for the denied subscription, so it has no servers to show"
    manifests = Store(tmp_path / "cache").manifests([SUB_DENIED])
    assert manifests and all(m.error and "AuthorizationFailed" in m.error for m in manifests)


def test_throttling_storm_is_survived_with_correct_results(make_sim, generated_fleet, tmp_path, capsys):
    calm = make_sim(generated_fleet)
    _, expected, _ = export(capsys, calm, tmp_path / "calm", "-o", "csv")
    stormy = make_sim(generated_fleet, faults="429:0.25,503:0.05", seed=11)
    code, got, err = export(capsys, stormy, tmp_path / "storm", "-o", "csv")
    assert code == 0, err
    assert rows_of(got) == rows_of(expected)
    assert any(e["status"] == 429 for e in stormy.sim.log.entries)


def test_store_is_private_and_holds_no_secret(make_sim, tmp_path, capsys):
    from wsam_tui.inventory import SIMULATOR_TOKEN

    fleet = scenario_fleet()
    running = make_sim(fleet, graph_quota=False)
    cache = tmp_path / "cache"
    code, _, _ = export(capsys, running, cache)
    assert code in (0, 3)
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    for path in Store(cache).files():
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, f"{path} is readable by others"
        data = path.read_bytes()
        for secret in (SIMULATOR_TOKEN.encode(), b"protectedSettings", b"protectedParameters", b"runAsPassword", b"Bearer "):
            assert secret not in data, f"{secret!r} found in {path}"


def test_corrupted_cache_is_set_aside_and_rebuilt(make_sim, tmp_path, capsys):
    running = make_sim(scenario_fleet(), graph_quota=False)
    cache = tmp_path / "cache"
    export(capsys, running, cache)
    db = cache / "cache.db"
    db.write_bytes(b"this is not a database" * 100)
    code, out, err = export(capsys, running, cache, "-o", "csv")
    assert "damaged" in err and "rebuilt" in err
    assert code in (0, 3)
    assert len(rows_of(out)) > 0
    assert list(tmp_path.glob("cache.corrupt-*")), "the damaged cache is kept aside for inspection"


def test_resource_graph_quota_is_respected_not_hit(make_sim, tmp_path, capsys):
    """With the quota on, a refresh that needs more queries than one window allows (the denied subscription
    makes every source run twice) waits for the window to reset instead of running into 429s."""
    running = make_sim(scenario_fleet())
    code, _, err = export(capsys, running, tmp_path / "cache")
    assert code == 3, err  # the denied subscription
    graph_calls = [e for e in running.sim.log.entries if "resourcegraph" in e["path"].lower()]
    assert len(graph_calls) > 15
    assert not [e for e in graph_calls if e["status"] == 429]


SERVER_TYPES = ("microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines")


def damage_value_files(cache, keep=lambda path: False) -> list:
    """Overwrite diskcache's value files (every chunk of rows bigger than a few KB lives in one)."""
    damaged = [p for p in sorted(cache.rglob("*.val")) if not keep(p)]
    for path in damaged:
        path.write_bytes(b"not a pickle \x00\xff" * 10)
    return damaged


def test_offline_export_of_a_cache_with_damaged_value_files_says_so_and_exits_4(make_sim, generated_fleet, tmp_path, capsys):
    running = make_sim(generated_fleet)
    cache = tmp_path / "cache"
    assert export(capsys, running, cache, "-o", "csv")[0] == 0
    running.stop()
    assert damage_value_files(cache)
    code, out, err = export(capsys, None, cache, "-o", "csv", "--offline")
    assert code == 4, err
    assert "Traceback" not in err and out == ""
    assert "cannot be read" in err and "UnpicklingError" in err
    assert "nothing in it could be read" in err


def test_offline_export_keeps_what_a_partly_damaged_cache_still_holds(make_sim, generated_fleet, tmp_path, capsys):
    running = make_sim(generated_fleet)
    cache = tmp_path / "cache"
    code, expected, _ = export(capsys, running, cache, "-o", "json")
    assert code == 0
    running.stop()
    machines = {p for p in cache.rglob("*.val")
                if str(pickle.loads(p.read_bytes())[0].get("type")).lower() in SERVER_TYPES}
    # the chunks that hold the servers stay readable; every other value file is damaged
    assert damage_value_files(cache, keep=lambda p: p in machines)
    code, out, err = export(capsys, None, cache, "-o", "json", "--offline")
    assert code == 3, err  # written, but some sources failed: their cells are unknown and stderr says why
    assert "Traceback" not in err and "cannot be read" in err
    servers = json.loads(out)["servers"]
    assert {s["id"] for s in servers} == {s["id"] for s in json.loads(expected)["servers"]}
    reasons = [c["unknownReason"] or "" for s in servers for c in s["capabilities"].values() if c["state"] == "unknown"]
    assert any("cannot be read" in r for r in reasons)


@pytest.mark.parametrize("seed", [6, 9])
def test_a_malformed_reply_to_a_read_is_retried_like_a_5xx(make_sim, tmp_path, capsys, seed):
    """Seeds 6 and 9 put a malformed answer of this fault mix on the first GET /subscriptions (any fleet size)."""
    from wsam_tui.sim.fleetgen import generate_fleet

    fleet = generate_fleet(size=150, seed=5)
    calm = make_sim(fleet)
    _, expected, _ = export(capsys, calm, tmp_path / "calm", "-o", "csv")
    faulty = make_sim(fleet, faults="429:0.05,500:0.02,503:0.02,reset:0.01,malformed:0.01", seed=seed)
    code, got, err = export(capsys, faulty, tmp_path / "faulty", "-o", "csv")
    malformed = [e for e in faulty.sim.log.entries if e.get("fault") == "malformed"]
    assert malformed and malformed[0]["path"] == "/subscriptions"
    assert code == 0, err
    assert rows_of(got) == rows_of(expected)


def failing_source(monkeypatch, source):
    """Resource Graph answers the query of ``source`` with a body that is not JSON, every time."""
    from wsam_tui.arm import graph
    from wsam_tui.arm.transport import ArmHttpError, ArmTransport

    query = next(q.query for q in graph.QUERIES if q.source is source)
    real_post = ArmTransport.post_json

    async def post(self, path, body, params=None, **kwargs):
        if isinstance(body, dict) and body.get("query") == query:
            raise ArmHttpError(200, "MalformedResponse", "the response was not valid JSON (35 bytes)",
                               method="POST", url=path)
        return await real_post(self, path, body, params, **kwargs)

    monkeypatch.setattr(ArmTransport, "post_json", post)


def cells(text: str, capability: str) -> dict[str, dict]:
    return {s["id"]: s["capabilities"][capability] for s in json.loads(text)["servers"] if capability in s["capabilities"]}


def test_a_source_that_fails_after_a_success_keeps_the_last_known_cells_flagged_stale(
        make_sim, generated_fleet, tmp_path, capsys, monkeypatch):
    from wsam_tui.fleet.model import Source

    running = make_sim(generated_fleet)
    cache = tmp_path / "cache"
    code, before, _ = export(capsys, running, cache, "-o", "json")
    assert code == 0
    counted = {sid for sid, c in cells(before, "policy").items() if "non-compliant polic" in c["summary"]}
    assert counted, "the fleet has servers with non-compliant policy states"
    failing_source(monkeypatch, Source.POLICY)
    code, after, err = export(capsys, running, cache, "-o", "json")
    assert code == 3 and "policy: HTTP 200 MalformedResponse" in err
    old, new = cells(before, "policy"), cells(after, "policy")
    for sid in old:
        assert (new[sid]["state"], new[sid]["summary"]) == (old[sid]["state"], old[sid]["summary"]), "the last known state"
        assert "stale" in new[sid]["flags"]
        assert "policy" in new[sid]["staleReason"] and "not valid JSON" in new[sid]["staleReason"]
    assert all("stale" not in c["flags"] for c in cells(after, "backup").values()), "other columns are fresh"


def test_a_source_that_fails_with_no_last_state_makes_its_cells_unknown_with_the_reason(
        make_sim, generated_fleet, tmp_path, capsys, monkeypatch):
    from wsam_tui.fleet.model import Source

    running = make_sim(generated_fleet)
    failing_source(monkeypatch, Source.POLICY)
    code, out, err = export(capsys, running, tmp_path / "cache", "-o", "json")
    assert code == 3
    for cell in cells(out, "policy").values():
        assert cell["state"] == "unknown" and "policy: HTTP 200 MalformedResponse" in cell["unknownReason"]
