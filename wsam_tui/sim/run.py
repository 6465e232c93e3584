"""Building and serving a simulator: used by `wsam-tui sim`, `wsam-tui --demo`, tests and benchmarks."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import sys
import tempfile
from importlib import resources
from pathlib import Path

from .durable import DurableState
from .faults import FaultInjector, parse_faults
from .server import RequestLog, RunningSimulator, Simulator
from .state import SimConfig, SimState
from .throttle import ArmThrottle, GraphQuota

DEMO_SIZE, DEMO_SEED = 320, 2026
# Package data (in the wheel and the sdist), read through importlib.resources so that an installed copy finds them
# as a checkout does; fleets/README.md says how each file is generated.
BUNDLED_FLEETS = resources.files(__package__) / "fleets"
DEMO_FLEET = BUNDLED_FLEETS / "demo-fleet.json"


def demo_fleet() -> dict:
    """The bundled demo fleet (generated_fleet(size=DEMO_SIZE, seed=DEMO_SEED), kept as a file for a fast start)."""
    from .fleetfile import load_fleet

    with DEMO_FLEET.open("rb") as f:
        return load_fleet(f)


def demo_fleet_id() -> str:
    """Names the demo fleet's version: a saved demo state made from another version is not replayed on it."""
    return "demo:" + hashlib.sha256(DEMO_FLEET.read_bytes()).hexdigest()[:16]


def create_simulator(
    fleet: dict,
    *,
    latency_ms: float = 0,
    faults: str | None = None,
    seed: int = 0,
    lro_seconds: float = 3.0,
    request_log: str | Path | None = None,
    throttle: bool = True,
    graph_quota: bool = True,
    page_size: int = 1000,
    rebase_time: bool = True,
    take_ownership: bool = False,
) -> Simulator:
    state = SimState(fleet, config=SimConfig(lro_seconds=lro_seconds, page_size=page_size), rebase_time=rebase_time,
                     take_ownership=take_ownership)
    return simulator_for(state, latency_ms=latency_ms, faults=faults, seed=seed, request_log=request_log,
                         throttle=throttle, graph_quota=graph_quota)


def create_durable_simulator(
    directory: str | Path,
    load_fleet,
    *,
    fleet_id: str,
    reset: bool = False,
    lro_seconds: float = 3.0,
    page_size: int = 1000,
    **knobs,
) -> Simulator:
    """A simulator whose state is kept in ``directory`` (sim/durable.py): the fleet from ``load_fleet()``
    the first time (or after ``reset``), the saved state afterwards. Notices (a damaged state set aside,
    another process serving it) are in ``sim.durable.notices``; ``sim.durable.close()`` when done."""
    durable = DurableState(directory)
    state = durable.open(load_fleet, fleet_id=fleet_id, reset=reset,
                         config=SimConfig(lro_seconds=lro_seconds, page_size=page_size))
    return simulator_for(state, durable=durable, **knobs)


def simulator_for(state: SimState, *, latency_ms: float = 0, faults: str | None = None, seed: int = 0,
                  request_log: str | Path | None = None, throttle: bool = True, graph_quota: bool = True,
                  durable: DurableState | None = None) -> Simulator:
    return Simulator(
        state,
        latency_ms=latency_ms,
        faults=FaultInjector(parse_faults(faults), seed=seed),
        throttle=ArmThrottle(enabled=throttle),
        graph_quota=GraphQuota(enabled=graph_quota),
        request_log=RequestLog(request_log),
        durable=durable,
    )


def start_in_thread(sim: Simulator, *, port: int = 0, ca_dir: str | Path | None = None) -> RunningSimulator:
    ca_dir = ca_dir or tempfile.mkdtemp(prefix="wsam-sim-")
    return RunningSimulator(sim, port=port, ca_dir=ca_dir).start_in_thread()


def serve_forever(sim: Simulator, *, port: int, ca_dir: str | Path | None, banner) -> int:
    """Serve until SIGINT/SIGTERM; banner(running) prints where to connect."""
    ca_dir = ca_dir or tempfile.mkdtemp(prefix="wsam-sim-")
    running = RunningSimulator(sim, port=port, ca_dir=ca_dir)

    async def main() -> None:
        await running.start_async()
        banner(running)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await running.stop_async()

    try:
        asyncio.run(main())
    except OSError as e:
        print(f"wsam-tui sim: cannot listen on port {port}: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0
