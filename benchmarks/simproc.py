"""Running `wsam-tui sim` in its own process for a benchmark, so that client and server figures stay apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_sim(size: int, *extra: str) -> tuple[subprocess.Popen, str, str]:
    """Start a simulator serving a generated fleet (seed 7); returns the process, base URL and CA path."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsam_tui.cli", "sim", "--size", str(size), "--seed", "7", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    base = ca = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("BASE_URL="):
            base = line.split("=", 1)[1].strip()
        elif line.startswith("CA_BUNDLE="):
            ca = line.split("=", 1)[1].strip()
        if base and ca:
            break
    if not base:
        raise RuntimeError(f"simulator did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, base, ca


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:  # freeing a 50k fleet can take longer than serving it
        proc.kill()
        proc.wait(10)
