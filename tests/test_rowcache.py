"""The table rows saved for a fast start: same rows back, ages against the new clock, and anything odd ignored."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta

from wsam_tui.fleet.capabilities import CATALOG
from wsam_tui.fleet.model import CapabilityState, Kind, Server, State
from wsam_tui.ui.app import console_columns
from wsam_tui.ui.rowcache import FILE_NAME, load_rows, save_rows
from wsam_tui.ui.table import TableData

FETCHED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def server(i: int, name: str | None = None, state: State = State.ON) -> Server:
    caps = {c.id: CapabilityState(c.id, state if j % 2 else State.OFF, "") for j, c in enumerate(CATALOG)}
    return Server(id=f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm{i}",
                  name=name or f"vm-{i:03d}", kind=Kind.VM, subscription_id="s", tenant_id="t", resource_group="rg",
                  location="westeurope", os_name="Windows Server 2022 Datacenter", os_version="10.0.20348.1",
                  state="running", agent_version="2.7", tags={}, identity_type="None", extensions=(),
                  capabilities=caps, fetched_at=FETCHED)


def built(servers, now):
    columns = console_columns({"s": "Production"}, now=now)
    return columns, TableData.build(servers, columns)


def test_rows_come_back_the_same_with_ages_against_the_new_clock(tmp_path):
    servers = [server(i) for i in range(5)] + [server(9, name="名前-サーバー")]
    _, data = built(servers, FETCHED + timedelta(minutes=5))
    save_rows(tmp_path, data, servers, {"oldest": FETCHED.isoformat()})
    assert oct(os.stat(tmp_path / FILE_NAME).st_mode & 0o777) == "0o600"
    later = FETCHED + timedelta(hours=3)
    columns_later, expected = built(servers, later)
    restored, meta = load_rows(tmp_path, columns_later, now=later)
    assert restored.ids == expected.ids and restored.states == expected.states
    assert restored.cells == expected.cells  # the age column says 3h, not the 5m it said when saved
    assert [c.width for c in restored.layout] == [c.width for c in expected.layout]
    assert meta == {"oldest": FETCHED.isoformat()}


def test_missing_damaged_foreign_or_tampered_files_are_ignored(tmp_path):
    servers = [server(i) for i in range(3)]
    columns, data = built(servers, FETCHED)
    assert load_rows(tmp_path, columns) is None  # no file yet
    save_rows(tmp_path, data, servers, {})
    path = tmp_path / FILE_NAME
    good = json.loads(path.read_text(encoding="utf-8"))

    def write(doc) -> None:
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")

    write("{not json")
    assert load_rows(tmp_path, columns) is None
    write({**good, "format": 999})
    assert load_rows(tmp_path, columns) is None
    write({**good, "columns": good["columns"][:-1]})  # another version's columns
    assert load_rows(tmp_path, columns) is None
    tampered = dict(good, cells=dict(good["cells"]))
    tampered["cells"]["name"] = tampered["cells"]["name"].replace("vm-000", "\x1b]0;pwned\x07")
    write(tampered)
    assert load_rows(tmp_path, columns) is None  # a control character: never drawn
    coded = json.loads(json.dumps(good))
    coded["cells"]["state"]["values"][0] = "run\x1b[2Jning"
    write(coded)
    assert load_rows(tmp_path, columns) is None  # also in a column kept as distinct values and codes
    coded = json.loads(json.dumps(good))
    coded["cells"]["state"]["values"] = []
    write(coded)
    assert load_rows(tmp_path, columns) is None  # a code pointing past the values
    write({**good, "states": good["states"][:-4]})  # fewer capability codes than rows need
    assert load_rows(tmp_path, columns) is None
    blob = bytearray(base64.b64decode(good["states"]))
    blob[-1] = 200  # a capability code no state has
    write({**good, "states": base64.b64encode(bytes(blob)).decode("ascii")})
    assert load_rows(tmp_path, columns) is None
    write(good)
    assert load_rows(tmp_path, columns) is not None
