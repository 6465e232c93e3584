"""Every subcommand's contract: a failing credential is a message and exit 5, never a traceback; --demo is
honoured (the demo's ARM, cache and journal) or refused with a message."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.ops_support import cli_env


def wsam(tmp_path, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    return subprocess.run([sys.executable, "-m", "wsam_tui.cli", *argv], capture_output=True, text=True, timeout=300,
                          env={**clean, **cli_env(tmp_path), "HOME": str(tmp_path / "home"),
                               "WSAM_DEMO_LRO_SECONDS": "0.2", **(env or {})}, check=False)


def test_no_credential_is_exit_5_with_a_message_for_every_command(tmp_path):
    for argv in (["extension", "install", "ama", "--all", "--yes", "--auth", "env"],
                 ["export", "--auth", "env"], ["tags", "add", "owner=ops", "--all", "--yes", "--auth", "env"]):
        out = wsam(tmp_path, *argv)
        assert out.returncode == 5, (argv, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.startswith(f"wsam-tui {argv[0]}: "), out.stderr


def test_every_subcommand_honours_demo(tmp_path):
    act = wsam(tmp_path, "--demo", "tags", "add", "wsamtest=1", "-q", "name:dc-prd-0000", "--yes")
    assert act.returncode == 0, act.stderr
    job_id = act.stdout.split("Plan ", 1)[1].split(":", 1)[0]
    listed = wsam(tmp_path, "--demo", "jobs", "list")
    assert listed.returncode == 0 and job_id in listed.stdout, listed.stdout
    assert wsam(tmp_path, "jobs", "list").stdout.strip() == "no jobs in the journal", "the demo's journal is its own"
    shown = wsam(tmp_path, "--demo", "jobs", "show", job_id)
    assert shown.returncode == 0 and "dc-prd-0000: succeeded" in shown.stdout, shown.stderr
    offline = wsam(tmp_path, "--demo", "export", "--offline", "-o", "csv")
    assert offline.returncode == 0 and "dc-prd-0000" in offline.stdout, offline.stderr
    refused = wsam(tmp_path, "--demo", "sim")
    assert refused.returncode == 2 and "--demo is for the console" in refused.stderr
    both = wsam(tmp_path, "--demo", "export", "--endpoint", "https://127.0.0.1:1")
    assert both.returncode == 2 and "does not go with --endpoint" in both.stderr and "Traceback" not in both.stderr
