"""Building and serving a simulator: used by `wsam-tui sim`, `wsam-tui --demo`, tests and benchmarks."""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from .faults import FaultInjector, parse_faults
from .server import RequestLog, RunningSimulator, Simulator
from .state import SimConfig, SimState
from .throttle import ArmThrottle, GraphQuota

DEMO_SIZE, DEMO_SEED = 320, 2026
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def demo_fleet() -> dict:
    """The bundled demo fleet; generated with the same seed when the file is not beside the package."""
    path = FIXTURES / "demo-fleet.json"
    if path.is_file():
        from .fleetfile import load_fleet

        return load_fleet(path)
    from .fleetgen import generate_fleet

    return generate_fleet(size=DEMO_SIZE, seed=DEMO_SEED)


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
    return Simulator(
        state,
        latency_ms=latency_ms,
        faults=FaultInjector(parse_faults(faults), seed=seed),
        throttle=ArmThrottle(enabled=throttle),
        graph_quota=GraphQuota(enabled=graph_quota),
        request_log=RequestLog(request_log),
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
