"""TLS for the simulator: a CA and a loopback server certificate, generated at start.

The real SDK clients refuse bearer tokens over plain HTTP, and a custom CA is the same path a
corporate TLS-inspecting proxy needs, so the simulator always speaks HTTPS (research/arm-api.md §1.2).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class SimTls:
    ca_path: Path
    server_context: ssl.SSLContext


def make_tls(ca_dir: str | os.PathLike[str], hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")) -> SimTls:
    """Create a fresh CA, write its PEM to ``ca_dir/ca.pem`` and return a server SSL context."""
    ca_dir = Path(ca_dir)
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="wsam-tui simulator")
    cert = ca.issue_cert(*hosts)
    ca_path = ca_dir / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return SimTls(ca_path=ca_path, server_context=ctx)
