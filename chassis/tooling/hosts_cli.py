"""`protomesh hosts`: the mesh across network-namespace hosts on this machine, in the foreground (docs/chaos.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from chassis.tooling.foreground import run_in_foreground
from chassis.tooling.hosts.mesh import DEFAULT_HOSTS, HostedMesh
from chassis.tooling.hosts.netns import PARTITION_TABLE, missing_requirements
from chassis.tooling.supervisor import MeshOptions, read_state

HELP = f"""\
Makes N hosts (network namespaces joined by a bridge, 10.x.y.0/24), runs a NATS node on each (one cluster,
streams and the registry replicated R3), PostgreSQL and Envoy on host1 and every service's replicas round
the hosts, each listening on its host's address. Ctrl-C stops everything and removes the hosts.

While it runs, cut a host off and heal it again (as the chaos suite does):
  ip netns exec NAMESPACE nft add table inet {PARTITION_TABLE}
  ip netns exec NAMESPACE nft add chain inet {PARTITION_TABLE} in '{{ type filter hook input priority -10; }}'
  ip netns exec NAMESPACE nft add rule inet {PARTITION_TABLE} in iifname eth0 drop
  ip netns exec NAMESPACE nft delete table inet {PARTITION_TABLE}
"""


def cmd_hosts(args: argparse.Namespace) -> int:
    """Run the multi-host mesh until Ctrl-C; print where everything runs."""
    problem = missing_requirements()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    running = read_state(args.state_dir)
    if running:
        print(f"a mesh is already running from {args.state_dir} (supervisor pid {running['supervisor_pid']}); "
              "`protomesh down` first, or pass another --state-dir", file=sys.stderr)
        return 1
    options = MeshOptions(state_dir=args.state_dir, gateway_port=args.port, replicas=dict(args.replicas),
                          default_replicas=args.default_replicas, service_env={"LOG_LEVEL": args.log_level},
                          only=[name.strip() for name in args.only.split(",")] if args.only else None)
    mesh = HostedMesh(options, hosts=args.hosts, progress=lambda message: print(message, flush=True))

    def show() -> None:
        print(f"\nprotomesh is up on {len(mesh.topology.hosts)} hosts; REST and gRPC on {mesh.gateway}\n")
        for line in placement(mesh):
            print(line)
        print("\nCtrl-C stops everything and removes the hosts.", flush=True)

    return run_in_foreground(start=mesh.start, show=show, tick=mesh.restart_dead, stop=mesh.stop,
                             what="the mesh and removing the hosts")


def placement(mesh: HostedMesh) -> list[str]:
    """One line per host: its namespace, address and what runs on it."""
    lines = []
    for host in mesh.topology.hosts:
        running = [p.name.removesuffix(f" on {host.name}") for p in mesh.all_processes()
                   if getattr(p, "place", None) == host or getattr(p, "host", None) == host]
        lines.append(f"  {host.name}  {host.address:<15} netns {host.namespace:<14} {', '.join(running)}")
    return lines


def _service_count(value: str) -> tuple[str, int]:
    service, _, count = value.partition("=")
    if not count.isdigit():
        raise argparse.ArgumentTypeError(f"--replicas wants SERVICE=N, not {value!r}")
    return service, int(count)


def add_commands(sub: Any) -> None:
    """Register `hosts` on the CLI's subparsers."""
    hosts = sub.add_parser("hosts", help="the mesh across network-namespace hosts (root; a NATS cluster)",
                           description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    hosts.add_argument("--hosts", type=int, default=DEFAULT_HOSTS, help="how many hosts (default: %(default)s)")
    hosts.add_argument("--port", type=int, default=8080, help="gateway port on host1's address (default: %(default)s)")
    hosts.add_argument("--default-replicas", type=int, default=2, help="replicas per service (default: %(default)s)")
    hosts.add_argument("--replicas", action="append", default=[], metavar="SERVICE=N", type=_service_count,
                       help="replicas of one service, e.g. context=3 (repeatable)")
    hosts.add_argument("--only", help="run only these services, comma-separated (identity always runs)")
    hosts.add_argument("--log-level", default="INFO", help="the replicas' LOG_LEVEL (default: %(default)s)")
    hosts.set_defaults(func=cmd_hosts)
