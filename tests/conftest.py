"""Shared fixtures: a simulator serving HTTPS on loopback from a background thread, and SDK clients for it."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from azure.core.credentials import AccessToken

from tests.fleetbuilder import scenario_fleet
from wsam_tui.sim.run import create_simulator, start_in_thread

# SDK warnings must never reach a terminal; tests read them from caplog when they care.
logging.getLogger("azure").setLevel(logging.WARNING)


class StaticCredential:
    """Any token will do: the simulator declares that it accepts any bearer token."""

    def __init__(self, token: str = "wsam-test-token") -> None:
        self.token = token

    async def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        pass


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential()


def _start(fleet: dict, tmp_path, **kwargs):
    sim = create_simulator(fleet, **{"lro_seconds": 0.2, **kwargs})
    return start_in_thread(sim, ca_dir=tmp_path / "ca")


@pytest.fixture
def scenario_sim(tmp_path) -> Iterator:
    """A fresh simulator on the explicit scenario fleet (tests/fleetbuilder.py), throttling off."""
    running = _start(scenario_fleet(), tmp_path, throttle=False, graph_quota=False, page_size=4)
    yield running
    running.stop()


@pytest.fixture
def make_sim(tmp_path):
    """Start a simulator on any fleet with any knobs; stopped at teardown."""
    started = []

    def make(fleet: dict, **kwargs):
        running = _start(fleet, tmp_path / f"s{len(started)}", **kwargs)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


def sdk_kwargs(running) -> dict:
    return {"base_url": running.base_url, "connection_verify": str(running.ca_path)}
