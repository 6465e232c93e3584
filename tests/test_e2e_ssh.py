"""`wsam-tui --demo` over SSH, as operators run it from a jump host: a private sshd on 127.0.0.1 (its own
host key, one authorised key, no password), the ssh client in a tmux pane at 200x50 with a pseudo-terminal
(`ssh -tt`), the console on the far side. The fleet arrives, a filter narrows it, the details pane reads a
server fresh from ARM, q quits and the SSH session ends with the console's exit code.

Skipped where sshd is not installed (CI installs tmux, not an SSH server)."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_e2e_tmux import demo_counts, header, open_prompt, table_has_keys
from tests.tmux_support import EXITED, REPO, Tmux, console_env, require_tmux


def _sshd() -> str:
    found = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)),
                                         None)
    if found is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("sshd/ssh not installed: the console-over-SSH test needs an SSH server")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ssh_server(tmp_path):
    """A private sshd for the current user; yields the ssh client's argv prefix."""
    sshd = _sshd()
    require_tmux()
    home = tmp_path / "sshd"
    home.mkdir(mode=0o700)
    for key in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / key)], check=True)
    (home / "authorized_keys").write_bytes((home / "user.pub").read_bytes())
    os.chmod(home / "authorized_keys", 0o600)
    port = _free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        f"PidFile {home / 'sshd.pid'}\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    server = subprocess.Popen([sshd, "-D", "-e", "-f", str(home / "sshd_config")], stdout=subprocess.DEVNULL,
                              stderr=open(home / "sshd.log", "wb"))  # noqa: SIM115 (closed with the process)
    client = ["ssh", "-tt", "-i", str(home / "user"), "-p", str(port), "-o", "StrictHostKeyChecking=no",
              "-o", f"UserKnownHostsFile={home / 'known_hosts'}", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
              f"{getpass.getuser()}@127.0.0.1"]
    deadline = time.monotonic() + 15
    while True:  # until the server accepts our key
        probe = subprocess.run([*client[:1], *client[2:], "true"], capture_output=True, timeout=15, check=False)
        if probe.returncode == 0:
            break
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.skip(f"a private sshd could not be started here: {(home / 'sshd.log').read_text()[-300:]}"
                        f"{probe.stderr.decode(errors='replace')[-300:]}")
        time.sleep(0.2)
    yield client
    server.terminate()
    server.wait(timeout=10)


def test_demo_over_ssh(ssh_server, tmp_path):
    total, arcs = demo_counts()
    remote_env = " ".join(f"{k}={v}" for k, v in console_env(tmp_path).items())
    remote = f"cd {REPO} && env {remote_env} {sys.executable} -m wsam_tui.cli --demo"
    tmux = Tmux(tmp_path, "ssh")
    try:
        tmux.start([*ssh_server, remote], {})
        tmux.wait(lambda s: f"{total:,} total" in header(s) and "│ online │" in header(s), "the fleet over SSH", 90)

        open_prompt(tmux, "/", "filter: words")
        tmux.type("kind:arc")
        tmux.keys("Enter")
        tmux.wait(lambda s: f"{arcs:,} shown" in header(s) and table_has_keys(s), "the filtered table")

        tmux.keys("Enter")  # details, fresh from ARM, with the capabilities and their evidence
        screen = tmux.wait(lambda s: re.search(r"as of \d\d:\d\d:\d\d UTC", s) is not None, "the details pane")
        assert "Properties" in screen and "Arc server" in screen
        tmux.keys("Escape")
        tmux.wait(lambda s: "Properties" not in s and table_has_keys(s), "the details pane to close")

        assert f"{EXITED}0" in tmux.quit_console(), "the SSH session ends with the console's exit code 0"
    finally:
        tmux.stop()
