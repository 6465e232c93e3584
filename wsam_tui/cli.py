"""The `wsam-tui` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wsam-tui", description="A terminal fleet console for Windows Server on Azure.")
    p.add_argument("--version", action="version", version=f"wsam-tui {__version__}")
    # With no COMMAND: the console. Its options (the subcommands have their own copies).
    p.add_argument("--demo", action="store_true",
                   help="the console on the bundled demo fleet, served by the simulator in this process (no account needed); "
                        "the demo's simulated Azure keeps its state between runs")
    p.add_argument("--demo-reset", action="store_true",
                   help="start the demo fleet afresh, forgetting what earlier demo sessions changed (implies --demo)")
    p.add_argument("--readonly", action="store_true", help="no action that writes is offered or sent")
    p.add_argument("--theme", metavar="NAME", help="colour theme (wsam-dark, wsam-light, wsam-high-contrast, wsam-ansi, "
                                                  "or one of yours in the config dir's themes/)")
    add_connection_options(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("sim", help="run the ARM simulator (HTTPS on loopback) for a fleet",
                       description="Serve a simulated Azure Resource Manager for a fleet file, a generated fleet, "
                                   "or (by default) the bundled demo fleet.")
    src = s.add_mutually_exclusive_group()
    src.add_argument("--fleet", metavar="FILE", help="serve this fleet file (see docs/fleet-format.md)")
    src.add_argument("--size", type=int, metavar="N", help="serve a generated fleet of N servers")
    s.add_argument("--seed", type=int, default=1, help="seed for the generated fleet and for injected faults (default 1)")
    s.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback only by default)")
    s.add_argument("--ca-dir", metavar="DIR", help="where to write the generated CA (ca.pem); default: a new private temp dir")
    s.add_argument("--latency-ms", type=float, default=0, help="added latency per request")
    s.add_argument("--lro-seconds", type=float, default=3.0, help="how long long-running operations run (default 3)")
    s.add_argument("--faults", metavar="SPEC", help="e.g. 429:0.05,500:0.01,503:0.02,reset:0.01,slow:0.02@5,malformed:0.01")
    s.add_argument("--no-throttle", action="store_true", help="turn off ARM token buckets and the Resource Graph quota")
    s.add_argument("--page-size", type=int, default=1000, help="items per page for ARM lists (default 1000)")
    s.add_argument("--request-log", metavar="FILE", help="append one JSON line per request to FILE")
    s.add_argument("--dump-fleet", metavar="FILE", help="write the fleet being served as a fleet file, then serve it")
    s.add_argument("--no-rebase-time", action="store_true",
                   help="keep the fleet's timestamps as written (default: shift them so the fleet looks current)")
    s.add_argument("--state", metavar="DIR",
                   help="keep the simulator's state in DIR: every accepted change is saved before it is answered, and a "
                        "restart with the same DIR and fleet carries on where the last one stopped")
    s.add_argument("--reset-state", action="store_true", help="with --state: forget the saved state and start afresh")
    e = sub.add_parser("export", help="write the inventory and capability matrix (json, csv, md) to stdout or a file",
                       description="The inventory and the capability matrix, non-interactive. Exit codes: 0 complete; "
                                   "3 written, but some subscriptions or sources failed (their cells say unknown); "
                                   "2 usage error; 4 no data (offline with an empty cache); 5 cannot connect or authenticate.")
    e.add_argument("-o", "--output", choices=("json", "csv", "md"), default="csv", help="format (default csv)")
    e.add_argument("-f", "--file", metavar="PATH", help="write here instead of stdout")
    add_connection_options(e)
    from .ops.headless import add_parsers

    add_parsers(sub)  # run-command, extension, patch, tags, power, identity, jobs
    return p


def add_connection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offline", action="store_true", help="read only the local cache, and say how old it is")
    p.add_argument("--subscription", action="append", default=[], metavar="ID_OR_NAME",
                   help="limit to this subscription (repeatable; default: all the credential can see)")
    p.add_argument("--tenant", help="tenant to sign in to")
    p.add_argument("--cloud", default="AzureCloud", choices=("AzureCloud", "AzureUSGovernment", "AzureChinaCloud"))
    p.add_argument("--endpoint", metavar="URL", help="any ARM-compatible endpoint (a running simulator, Azure Stack Hub)")
    p.add_argument("--ca-bundle", metavar="PEM", help="CA certificates to trust for --endpoint")
    p.add_argument("--auth", choices=("cli", "device-code", "env", "managed-identity", "static"),
                   help="pick one credential (default: Azure CLI, then environment/workload/managed identity when "
                        "configured, then device code)")
    p.add_argument("--cache-dir", metavar="DIR", help="where the local cache lives (default: the user cache dir)")
    p.add_argument("--no-graph", action="store_true",
                   help="read every subscription through ARM's own lists instead of Resource Graph (slow: reads per "
                        "server; what the console does by itself for subscriptions Resource Graph refuses)")
    p.add_argument("--required-tag", action="append", default=[], metavar="KEY",
                   help="tag keys every server must carry (repeatable; default env, owner, costCenter)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sim":
        if args.demo or args.demo_reset:
            print("wsam-tui sim: --demo is for the console and its commands; `wsam-tui sim` serves the demo fleet "
                  "by default", file=sys.stderr)
            return 2
        return run_sim(args)
    if args.command is None:
        from .console import run_console

        return run_console(args)
    from .commands import run_subcommand

    return run_subcommand(args)


def run_sim(args: argparse.Namespace) -> int:
    from .sim.faults import FaultSpecError, parse_faults
    from .sim.fleetfile import FleetFileError, dump_fleet, load_fleet
    from .sim.run import create_simulator, demo_fleet, serve_forever

    try:
        parse_faults(args.faults)
    except FaultSpecError as e:
        print(f"wsam-tui sim: --faults: {e}", file=sys.stderr)
        return 2
    if args.reset_state and not args.state:
        print("wsam-tui sim: --reset-state needs --state DIR", file=sys.stderr)
        return 2
    if args.state and (args.dump_fleet or args.no_rebase_time):
        print("wsam-tui sim: --state keeps its own time base and fleet; it does not go with --dump-fleet or "
              "--no-rebase-time", file=sys.stderr)
        return 2
    if args.size is not None and not 1 <= args.size <= 100_000:
        print("wsam-tui sim: --size must be between 1 and 100000", file=sys.stderr)
        return 2
    try:
        if args.fleet:
            fleet, source = load_fleet(args.fleet), args.fleet
        elif args.size is not None:
            from .sim.fleetgen import generate_fleet

            fleet, source = generate_fleet(size=args.size, seed=args.seed), f"generated, size {args.size}, seed {args.seed}"
        else:
            fleet, source = demo_fleet(), "the bundled demo fleet"
    except FleetFileError as e:
        print(f"wsam-tui sim: {e}", file=sys.stderr)
        return 2
    except (OSError, json.JSONDecodeError) as e:
        print(f"wsam-tui sim: cannot read fleet {args.fleet}: {e}", file=sys.stderr)
        return 2
    if args.dump_fleet:
        dump_fleet(fleet, args.dump_fleet)
    knobs = {"latency_ms": args.latency_ms, "faults": args.faults, "seed": args.seed, "request_log": args.request_log,
             "throttle": not args.no_throttle, "graph_quota": not args.no_throttle}
    if args.state:
        from .sim.run import create_durable_simulator

        given = fleet
        fleet_id = f"sim:{Path(args.fleet).resolve()}" if args.fleet else f"sim:{source}"
        try:
            sim = create_durable_simulator(args.state, lambda: given, fleet_id=fleet_id, reset=args.reset_state,
                                           lro_seconds=args.lro_seconds, page_size=args.page_size, **knobs)
        except OSError as e:
            print(f"wsam-tui sim: --state {args.state}: {e}", file=sys.stderr)
            return 2
        del given
        for notice in sim.durable.notices:
            print(f"wsam-tui sim: {notice}", file=sys.stderr)
    else:
        sim = create_simulator(fleet, lro_seconds=args.lro_seconds, page_size=args.page_size,
                               rebase_time=not args.no_rebase_time, take_ownership=True, **knobs)
    del fleet  # the simulator owns it now
    n_servers = sum(1 for _ in sim.state.all_machines())

    def banner(running) -> None:
        print(f"wsam-tui simulator: {n_servers} servers in {len(sim.state.subscriptions)} subscriptions "
              f"({source})", flush=True)
        print(f"BASE_URL={running.base_url}", flush=True)
        print(f"CA_BUNDLE={running.ca_path}", flush=True)
        # the sign-in settings carry the simulator's client secret: a private file beside the CA, not stdout
        sign_in = sim.identity.environment(running.base_url) | {"REQUESTS_CA_BUNDLE": str(running.ca_path)}
        env_file = Path(running.ca_path).parent / "identity.env"
        fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(f"{k}={v}\n" for k, v in sign_in.items())
        print(f"AZURE_TENANT_ID={sign_in['AZURE_TENANT_ID']}", flush=True)
        print(f"AZURE_CLIENT_ID={sign_in['AZURE_CLIENT_ID']}", flush=True)
        print(f"IDENTITY_ENV={env_file}", flush=True)
        if args.dump_fleet:
            print(f"FLEET_FILE={Path(args.dump_fleet).resolve()}", flush=True)
        print("Serving until interrupted (Ctrl-C).", flush=True)

    code = serve_forever(sim, port=args.port, ca_dir=args.ca_dir, banner=banner)
    # Freeing a 50k-server fleet object by object takes longer than serving it; the log is closed, so skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
