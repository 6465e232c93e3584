"""The store's page-by-page writes: a source's new rows arrive chunk by chunk and replace the old ones only
when complete; a refresh that fails or stops midway leaves the last known rows; an old cache is cleared
with a notice; and a refresh stored a page at a time loads the same fleet as one stored whole."""

from __future__ import annotations

import asyncio

import diskcache
import pytest

from wsam_tui.arm import graph
from wsam_tui.arm.transport import ArmTransport
from wsam_tui.fleet.model import Source
from wsam_tui.inventory import ConnectOptions, Inventory, connect
from wsam_tui.store.cache import SCHEMA, Store

SUB = "00000000-0000-0000-0000-00000000000a"


def row_keys(store: Store) -> list[tuple]:
    return [k for k in store._cache.iterkeys() if isinstance(k, tuple) and k[0] == "rows"]


def rows(*names: str) -> list[dict]:
    return [{"id": f"/subscriptions/{SUB}/x/{n}", "name": n} for n in names]


def names(found: list[dict]) -> list[str]:
    return [r["name"] for r in found]


def test_chunks_arriving_out_of_order_are_read_in_page_order(tmp_path):
    store = Store(tmp_path / "store")
    writer = store.begin_rows(SUB, "machines")
    writer.add(2, rows("e", "f"))
    writer.add(0, rows("a", "b"))
    writer.add(1, rows("c", "d"))
    writer.commit()
    assert names(store.rows(SUB, "machines")) == ["a", "b", "c", "d", "e", "f"]
    [manifest] = store.manifests([SUB])
    assert manifest.count == 6 and manifest.chunks == 3
    assert names(store.rows_of(manifest)) == ["a", "b", "c", "d", "e", "f"]


def test_readers_see_the_old_rows_until_the_new_ones_are_complete(tmp_path):
    store = Store(tmp_path / "store")
    store.put_rows(SUB, "machines", rows("old1", "old2"))
    writer = store.begin_rows(SUB, "machines")
    writer.add(0, rows("new1"))
    assert names(store.rows(SUB, "machines")) == ["old1", "old2"], "half a refresh must not be visible"
    writer.add(1, rows("new2"))
    writer.commit()
    assert names(store.rows(SUB, "machines")) == ["new1", "new2"]
    assert len(row_keys(store)) == 2, "the replaced chunks are deleted"


def test_a_discarded_write_keeps_the_last_known_rows_and_leaves_nothing_behind(tmp_path):
    store = Store(tmp_path / "store")
    store.put_rows(SUB, "machines", rows("old"))
    before = row_keys(store)
    writer = store.begin_rows(SUB, "machines")
    writer.add(0, rows("half"))
    writer.discard()
    assert names(store.rows(SUB, "machines")) == ["old"]
    assert row_keys(store) == before
    with pytest.raises(RuntimeError):
        writer.add(1, rows("late"))


def test_an_error_keeps_the_rows_and_says_why(tmp_path):
    store = Store(tmp_path / "store")
    store.put_rows(SUB, "machines", rows("kept"))
    store.put_error(SUB, "machines", "HTTP 500 from Resource Graph")
    [manifest] = store.manifests([SUB])
    assert manifest.error == "HTTP 500 from Resource Graph" and manifest.fetched_at is not None
    assert names(store.rows_of(manifest)) == ["kept"]


def test_rows_replaced_by_another_console_are_read_from_the_new_generation(tmp_path):
    store = Store(tmp_path / "store")
    store.put_rows(SUB, "machines", rows("first"))
    [manifest] = store.manifests([SUB])
    other = Store(tmp_path / "store")  # a second console sharing the cache
    other.put_rows(SUB, "machines", rows("second"))
    assert names(store.rows_of(manifest)) == ["second"], "the chunks the old manifest named are gone"


def test_a_cache_of_the_older_format_is_cleared_with_a_notice(tmp_path):
    directory = tmp_path / "store"
    old = diskcache.Cache(str(directory))
    old.set(("manifest", 1, SUB, "machines"), {"tenant": "", "fetchedAt": None, "chunks": 1, "count": 1})
    old.set(("rows", 1, SUB, "machines", 0), rows("from-v1"))
    old.close()
    store = Store(directory)
    assert any("older wsam-tui" in n and "cleared" in n for n in store.notices)
    assert store.manifests() == [] and len(store._cache) == 1  # only the format marker
    assert Store(directory).notices == [], "the notice is given once"
    assert SCHEMA > 1


# ---- through the inventory, against the simulator ---------------------------------------------------


@pytest.fixture(scope="module")
def fleet() -> dict:
    from wsam_tui.sim.fleetgen import generate_fleet

    return generate_fleet(size=150, seed=5)


async def no_sleep(_seconds: float) -> None:
    return None


async def refreshed(running, store: Store, **kwargs):
    conn = await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))
    conn.transport.sleep = no_sleep  # the simulator's quota is off: the client's mirror need not wait
    try:
        return await Inventory(store).refresh(conn, **kwargs)
    finally:
        await conn.close()


def table(store: Store) -> list[tuple]:
    """What the server table shows: every server's fields and cells (fetch times aside)."""
    return [(s.id, s.name, s.state, s.os_name, tuple(e.name for e in s.extensions),
             tuple((k, c.state, c.summary, c.flags, c.unknown_reason) for k, c in sorted(s.capabilities.items())))
            for s in Inventory(store).load().servers]


def test_pages_stored_as_they_arrive_load_the_same_fleet_as_whole_results(make_sim, fleet, tmp_path, monkeypatch):
    running = make_sim(fleet, graph_quota=False, throttle=False)
    monkeypatch.setattr(graph, "PAGE", 40)  # many pages per source, fetched in parallel, arriving in any order
    paged = Store(tmp_path / "paged")
    report = asyncio.run(refreshed(running, paged))
    assert report.complete
    assert any(m.chunks > 1 for m in paged.manifests() if m.source == Source.MACHINES.value)

    # the same fleet through whole results: fetch_sources without a sink, each result put at once
    async def whole() -> Store:
        conn = await connect(ConnectOptions(endpoint=running.base_url, ca_bundle=str(running.ca_path)))
        conn.transport.sleep = no_sleep
        store = Store(tmp_path / "whole")
        inv = Inventory(store)
        subs = await inv.list_subscriptions(conn)
        store.put_meta("subscriptions", subs)
        results = await graph.fetch_sources(conn.transport, [s["subscriptionId"] for s in subs])
        await conn.close()
        from wsam_tui.inventory import subscription_of

        for result in results:
            assert result.error is None
            for sub in result.subscriptions:
                picked = [graph.unflatten_machine(r) if result.source is Source.MACHINES else r for r in result.rows]
                store.put_rows(sub, result.source.value, [r for r in picked if subscription_of(r) == sub.lower()])
        return store

    expected = table(asyncio.run(whole()))
    assert len(expected) == 150
    assert table(paged) == expected


def test_a_refresh_stopped_midway_keeps_the_previous_rows_of_unfinished_sources(make_sim, fleet, tmp_path, monkeypatch):
    running = make_sim(fleet, graph_quota=False, throttle=False)
    store = Store(tmp_path / "store")
    assert asyncio.run(refreshed(running, store)).complete
    before = table(store)
    counts = {(m.subscription, m.source): m.count for m in store.manifests()}
    keys_before = set(row_keys(store))
    monkeypatch.setattr(graph, "PAGE", 40)

    async def stopped_midway() -> None:
        tasks: list[asyncio.Task] = []

        def stop_at_second_machine_page(source: Source, done: int, total: int) -> None:
            if source is Source.MACHINES and done >= 80:
                tasks[0].cancel()

        tasks.append(asyncio.ensure_future(refreshed(running, store, progress=stop_at_second_machine_page)))
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]

    asyncio.run(stopped_midway())
    assert table(store) == before, "every server and cell is still the last known one"
    assert {(m.subscription, m.source): m.count for m in store.manifests()} == counts
    machines = [m for m in store.manifests() if m.source == Source.MACHINES.value and m.count]
    assert all(set(row_keys(store)) >= {("rows", SCHEMA, m.subscription, m.source, m.generation, p) for p in m.positions}
               for m in machines)
    leftovers = {k for k in row_keys(store) if k[3] == Source.MACHINES.value} - keys_before
    assert not leftovers, "the pages of the stopped source were removed"


def test_a_source_failing_midway_keeps_its_rows_and_records_the_error(make_sim, fleet, tmp_path, monkeypatch):
    running = make_sim(fleet, graph_quota=False, throttle=False)
    store = Store(tmp_path / "store")
    assert asyncio.run(refreshed(running, store)).complete
    before = {(m.subscription, m.source): m.count for m in store.manifests()}
    monkeypatch.setattr(graph, "PAGE", 40)
    real_post = ArmTransport.post_json

    async def machine_pages_fail_after_the_first(self, path, body, params=None):
        if "microsoft.compute/virtualmachines'" in body["query"] and body["options"]["$skip"] > 0:
            raise graph.ArmHttpError(500, "InternalServerError", "the third page broke", method="POST", url=path)
        return await real_post(self, path, body, params)

    monkeypatch.setattr(ArmTransport, "post_json", machine_pages_fail_after_the_first)
    report = asyncio.run(refreshed(running, store))
    assert {source for _, source, _ in report.failures} == {Source.MACHINES.value}
    after = {m.subscription + "/" + m.source: m for m in store.manifests()}
    for (sub, source), count in before.items():
        m = after[sub + "/" + source]
        assert m.count == count
        if source == Source.MACHINES.value:
            assert "the third page broke" in (m.error or "")
    assert len(Inventory(store).load().servers) == 150



@pytest.mark.parametrize("damage", [b"not a pickle", b"", None], ids=["garbage", "truncated", "missing"])
def test_a_chunk_that_cannot_be_read_costs_only_its_source_until_a_refresh_replaces_it(tmp_path, damage):
    store = Store(tmp_path / "store")
    def big(source: str) -> list[dict]:  # bigger than diskcache keeps inline: a value file of its own
        return [{"name": f"vm-{i}", "blob": f"{source}-{i}-" + "x" * 400} for i in range(200)]

    store.put_rows(SUB, "policy", big("policy"))
    store.put_rows(SUB, "machines", big("machines"))
    [policy_file] = [p for p in (tmp_path / "store").rglob("*.val") if b"policy-0-" in p.read_bytes()]
    if damage is None:
        policy_file.unlink()
    else:
        policy_file.write_bytes(damage)
    reader = Store(tmp_path / "store")
    manifests = {m.source: m for m in reader.manifests([SUB])}
    assert reader.rows_of(manifests["policy"]) == []
    assert "cannot be read" in reader.damaged[(SUB, "policy")]
    assert any("policy rows" in n and "cannot be read" in n for n in reader.notices)
    assert len(reader.rows_of(manifests["machines"])) == 200, "the other source is still read"
    reader.put_rows(SUB, "policy", rows("fresh"))
    assert names(reader.rows(SUB, "policy")) == ["fresh"] and not reader.damaged
