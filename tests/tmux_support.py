"""Driving the real console in a real terminal: a private tmux server (its own socket, no user config), the
screen read with capture-pane, never blind sleeps."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

SGR = re.compile(r"\x1b\[([0-9;:]*)m")
EXITED = "WSAM-EXITED rc="
REPO = Path(__file__).resolve().parents[1]


def require_tmux() -> str:
    found = shutil.which("tmux")
    if found is None:
        pytest.skip("tmux is not installed: the end-to-end console test needs a real terminal multiplexer")
    return found


class Tmux:
    """One detached session on a private server; ``stop()`` kills that server only."""

    def __init__(self, tmp_path: Path, name: str = "wsam") -> None:
        self.tmux = require_tmux()
        self.socket = f"wsam-test-{os.getpid()}-{name}"
        self.target = name
        self.tmp_path = tmp_path
        self.config = tmp_path / f"{name}.tmux.conf"

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([self.tmux, "-L", self.socket, "-f", str(self.config), *args], capture_output=True,
                              text=True, timeout=20, check=False, env=_terminal_env())
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, argv: list[str], env: dict[str, str], size: tuple[int, int] = (200, 50)) -> None:
        """Run ``argv`` in a pane of ``size``; when it ends the pane says so, with its exit code, and stays."""
        # without a client a window falls back to default-size (80x24); no status line: the pane is the size
        self.config.write_text(f"set -g default-size {size[0]}x{size[1]}\nset -g status off\n")
        script = self.tmp_path / f"{self.target}.sh"
        exports = "".join(f"export {k}={_quote(v)}\n" for k, v in env.items())
        command = " ".join(_quote(a) for a in argv)
        script.write_text(f"cd {_quote(str(REPO))}\n{exports}{command}\necho {EXITED}$?\nsleep 120\n")
        self.run("new-session", "-d", "-s", self.target, "-x", str(size[0]), "-y", str(size[1]),
                 f"sh {_quote(str(script))}")
        width, height = self.run("display-message", "-t", self.target, "-p", "#{pane_width} #{pane_height}").split()
        assert (int(width), int(height)) == size, f"the pane is {width}x{height}, not {size[0]}x{size[1]}"

    def title(self) -> str:
        return self.run("display-message", "-t", self.target, "-p", "#{pane_title}").rstrip("\n")

    def screen(self, escapes: bool = False) -> str:
        return self.run("capture-pane", "-t", self.target, "-p", *(["-e"] if escapes else []))

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.target, *keys)

    def type(self, text: str) -> None:
        self.run("send-keys", "-t", self.target, "-l", text)

    def wait(self, predicate: Callable[[str], bool], what: str, timeout: float = 20.0, escapes: bool = False) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen(escapes)
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{self.screen()}")
            time.sleep(0.1)

    def wait_text(self, needle: str, timeout: float = 20.0) -> str:
        return self.wait(lambda s: needle in s, repr(needle), timeout)

    def quit_console(self) -> str:
        """q (and y when the console asks because a refresh or job still runs); the screen once it has ended."""
        self.keys("q")
        screen = self.wait(lambda s: EXITED in s or "Quit anyway?" in s, "quit or its confirmation")
        if "Quit anyway?" in screen:
            self.keys("y")
        return self.wait_text(EXITED)

    def stop(self) -> None:
        socket = self.run("display-message", "-p", "#{socket_path}", check=False).strip()
        self.run("kill-server", check=False)
        if socket:
            Path(socket).unlink(missing_ok=True)


def _terminal_env() -> dict[str, str]:
    """Ours, minus what would mislead a program in the pane: a size fixed by the test run (COLUMNS/LINES,
    which Textual obeys over the terminal's own), Textual's knobs, pytest's markers, an outer tmux."""
    dropped = ("COLUMNS", "LINES", "TMUX", "TMUX_PANE", "NO_COLOR")
    return {k: v for k, v in os.environ.items()
            if k not in dropped and not k.startswith(("TEXTUAL_", "PYTEST_"))}


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def console_env(tmp_path: Path) -> dict[str, str]:
    """Private cache, config and state directories; 24-bit colour; nothing from the user's own setup."""
    return {"WSAM_CACHE_DIR": str(tmp_path / "cache"), "WSAM_CONFIG_DIR": str(tmp_path / "config"),
            "WSAM_STATE_DIR": str(tmp_path / "state"), "COLORTERM": "truecolor", "TEXTUAL_ANIMATIONS": "none"}


def wsam_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsam_tui.cli", *args]


def sgr_colours(captured: str) -> set[str]:
    """The 24-bit foreground and background colours the screen was drawn with."""
    colours = set()
    for params in SGR.findall(captured):
        parts = params.replace(":", ";").split(";")
        for i, p in enumerate(parts):
            if p in ("38", "48") and parts[i + 1:i + 2] == ["2"] and len(parts) >= i + 5:
                colours.add(f"{p}:" + ",".join(parts[i + 2:i + 5]))
    return colours
