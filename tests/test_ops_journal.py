"""The journal and the audit log on their own: replay, torn lines, locking, secrets, the principal."""

from __future__ import annotations

import base64
import json

import pytest

from tests.fleetbuilder import arc, vm
from wsam_tui.fleet.model import Kind
from wsam_tui.ops.audit import AuditLog, principal_from_token
from wsam_tui.ops.catalog import Target, action
from wsam_tui.ops.journal import JobBusyError, Journal, scrub


def header(job_id: str = "job1") -> dict:
    targets = []
    for doc, kind in ((vm("web-00"), Kind.VM), (arc("fs-00"), Kind.ARC)):
        t = Target(doc["id"], doc["name"], kind, "sub", "rg", "westeurope")
        call = action("run-command").request(t, {"script": "hostname", "parameters": {}, "timeout": 60, "run_name": "wsam-x",
                                                  "protected_parameters": ["Password"]})
        targets.append({"target": t.to_json(), "params": {}, "call": call.to_json()})
    return {"id": job_id, "action": "run-command", "title": "Run Command: hostname", "params": {},
            "secretNames": ["protected_parameters"], "principal": "unknown", "targets": targets, "skipped": []}


def test_replay_follows_the_records_and_skips_a_torn_last_line(tmp_path):
    journal = Journal(tmp_path / "jobs")
    writer = journal.create(header())
    web, fs = (t["target"]["id"] for t in header()["targets"])
    writer.append({"t": "intent", "target": web, "attempt": 1})
    writer.append({"t": "accepted", "target": web, "poll": {"mode": "resource"}, "requestId": "r1"})
    writer.append({"t": "intent", "target": fs, "attempt": 1})
    writer.close()
    with open(journal.path("job1"), "a", encoding="utf-8") as fh:
        fh.write('{"t":"done","target":"' + web[:20])  # SIGKILL in the middle of a line
    job = journal.load("job1")
    web_rec, fs_rec = job.targets[web.lower()], job.targets[fs.lower()]
    assert web_rec.poll == {"mode": "resource"} and web_rec.request_id == "r1" and not web_rec.in_doubt
    assert fs_rec.in_doubt and fs_rec.poll is None, "sent, no answer: in doubt, to be asked about on resume"
    assert job.unfinished and len(job.problems) == 1 and "line 5" in job.problems[0]
    assert [j.id for j in journal.unfinished()] == ["job1"]


def test_one_process_drives_a_job_at_a_time(tmp_path):
    journal = Journal(tmp_path / "jobs")
    writer = journal.create(header())
    with pytest.raises(JobBusyError):
        journal.open("job1")
    assert journal.busy("job1")
    writer.close()
    journal.open("job1").close()
    with pytest.raises(ValueError):
        journal.path("../etc/passwd")


def test_protected_values_never_reach_the_files(tmp_path):
    journal = Journal(tmp_path / "jobs")
    secret = "hunter2-secret"
    writer = journal.create({**header(), "params": {"protectedSettings": {"commandToExecute": secret},
                                                    "protected_parameters": ["Password"]}})
    writer.append({"t": "done", "target": header()["targets"][0]["target"]["id"], "state": "succeeded",
                   "result": {"properties": {"protectedSettings": {"key": secret}, "runAsPassword": secret}}})
    writer.close()
    AuditLog(tmp_path / "audit.jsonl").write("target", {"params": {"protectedParameters": [{"name": "a", "value": secret}]}})
    for path in (journal.path("job1"), tmp_path / "audit.jsonl"):
        text = path.read_text()
        assert secret not in text
    assert "Password" in journal.path("job1").read_text(), "names of protected parameters are kept (not their values)"
    assert scrub({"protectedParameters": [{"name": "a", "value": "<hidden>"}]}) == {
        "protectedParameters": [{"name": "a", "value": "<hidden>"}]}


def _jwt(claims: dict) -> str:
    def part(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


def test_the_principal_comes_from_the_token_claims():
    assert principal_from_token(_jwt({"upn": "alice@contoso.com", "oid": "1"})) == "alice@contoso.com"
    assert principal_from_token(_jwt({"appid": "app-1", "oid": "obj-1"})) == "app app-1 (object obj-1)"
    assert principal_from_token("wsam-simulator-accepts-any-token") == "unknown"
    assert principal_from_token("a.b.c") == "unknown"
    assert principal_from_token(_jwt({"upn": "\x1b]0;pwned\x07mallory"})) == "␛]0;pwned␇mallory"
