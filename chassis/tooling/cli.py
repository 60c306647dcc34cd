"""The `protomesh` command: bring the local mesh up, look at it, take it down."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from chassis.db import safe_url
from chassis.paths import RUN_DIR
from chassis.registry import Instance, registry_from_env
from chassis.tooling.audit_cli import add_commands as add_audit_commands
from chassis.tooling.bootstrap import bootstrap_database
from chassis.tooling.catalog import load_catalog
from chassis.tooling.deadletters_cli import add_commands as add_deadletter_commands
from chassis.tooling.faults_cli import add_commands as add_fault_commands
from chassis.tooling.faults_cli import status_lines as fault_status_lines
from chassis.tooling.foreground import run_in_foreground
from chassis.tooling.hosts_cli import add_commands as add_hosts_commands
from chassis.tooling.identity_cli import add_commands as add_identity_commands
from chassis.tooling.identity_session import take_admin_password
from chassis.tooling.observe import LEVELS, LogFilter, follow_logs, format_entry, list_traces, read_logs, show_trace
from chassis.tooling.release import ReleaseController
from chassis.tooling.release_cli import add_commands as add_release_commands
from chassis.tooling.release_cli import status_lines as release_status_lines
from chassis.tooling.supervisor import DESIRED_FILE, Mesh, MeshOptions, grpc_serving, pid_alive, read_state
from chassis.tooling.workflows_cli import add_commands as add_workflow_commands

EXAMPLES = """\
Every call but health, the API documents, reflection and the OAuth endpoints needs a credential: a
bearer token (.venv/bin/protomesh token prints the local admin's) or an API key (protomesh apikeys create).
REST (JSON over HTTP, transcoded by Envoy):
  TOKEN=$(.venv/bin/protomesh token)
  curl -s -H "Authorization: Bearer $TOKEN" http://{gw}/v1/agents/types
  curl -s -H "Authorization: Bearer $TOKEN" -X POST http://{gw}/v1/agents -d '{{"name": "calc", "type": "calculator"}}'
  curl -s -H "Authorization: Bearer $(.venv/bin/protomesh token)" http://{gw}/v1/agents
  curl -s http://{gw}/health
gRPC (same port):
  grpcurl -plaintext {gw} list
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{{"type": "calculator"}}' {gw} \\
      protomesh.agent.v1.AgentService/DiscoverAgents
API docs in a browser: http://{gw}/docs (Authorize with the token or an API key, then Try it out)
Identities (.venv/bin/protomesh): login (device flow), users list, apikeys create NAME, keys rotate
Look inside (another terminal, .venv/bin/protomesh):
  protomesh status        protomesh registry        protomesh traces        protomesh logs -f
"""


def _show_admin_password(state_dir: Path) -> None:
    """Print the local admin's generated password, once: it is then removed from bootstrap.json.

    On the terminal only (never through a logger), and only on the mesh's first start without
    PROTOMESH_ADMIN_PASSWORD: afterwards only its argon2id hash exists.
    """
    taken = take_admin_password(state_dir)
    if taken is None:
        return
    email, password = taken
    print(f"\nThe local admin is {email}; its generated password (shown this once, keep it now):\n\n"
          f"    {password}\n\n"
          "(`protomesh token` and `protomesh users ...` need no password: the mesh kept the admin's session\n"
          "for this folder. The password signs in elsewhere: `protomesh login`, the login page.)\n",
          flush=True)


def _parse_replicas(values: list[str]) -> tuple[int, dict[str, int]]:
    default, per_service = 2, {}
    for value in values:
        name, _, count = value.rpartition("=")
        try:
            number = int(count)
        except ValueError:
            raise SystemExit(f"--replicas {value!r}: expected N or SERVICE=N, e.g. --replicas agent=3") from None
        if not 1 <= number <= 16:
            raise SystemExit(f"--replicas {value!r}: the count must be between 1 and 16")
        if name:
            per_service[name] = number
        else:
            default = number
    return default, per_service


def cmd_up(args: argparse.Namespace) -> int:
    """Start the mesh in the foreground (or in the background with --detach) until Ctrl-C."""
    state_dir: Path = args.state_dir
    running = read_state(state_dir)
    if running:
        print(f"a mesh is already running from {state_dir} (supervisor pid {running['supervisor_pid']}, "
              f"gateway {running['gateway']}); use `protomesh status`, or `protomesh down` first", file=sys.stderr)
        return 1
    if args.detach:
        return _detach(args)
    default, per_service = _parse_replicas(args.replicas)
    options = MeshOptions(
        state_dir=state_dir, gateway_port=args.port, replicas=per_service, default_replicas=default,
        database_url=os.environ.get("DATABASE_URL") or None, nats_url=os.environ.get("NATS_URL") or None,
        consul_http_addr=os.environ.get("CONSUL_HTTP_ADDR") or None,
        service_env={"LOG_LEVEL": args.log_level},
        only=[name.strip() for name in args.only.split(",")] if args.only else None,
    )
    mesh = Mesh(options, progress=lambda message: print(message, flush=True))
    releases: ReleaseController | None = None

    def show() -> None:
        nonlocal releases
        gw = mesh.gateway
        print(f"\nprotomesh is up. REST and gRPC on {gw}; logs in {mesh.log_dir}\n")
        print(EXAMPLES.format(gw=gw))
        if not args.background_child:  # a detached mesh's output goes to up.log: `_detach` shows it instead
            _show_admin_password(state_dir)
        print("Ctrl-C stops everything." if not args.background_child else "`protomesh down` stops everything.",
              flush=True)
        releases = ReleaseController(mesh)  # `protomesh release` requests, run beside the loop

    def tick() -> None:
        if not args.no_restart:
            mesh.restart_dead()
        mesh.apply_desired()
        if releases is not None:
            releases.tick()

    def stop() -> None:
        if releases is not None:
            releases.stop()
        mesh.stop()

    return run_in_foreground(start=mesh.start, show=show, tick=tick, stop=stop,
                             what="the mesh (gateway, services, NATS, PostgreSQL)")


def _detach(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "chassis.tooling.cli", "--state-dir", str(args.state_dir), "up",
            "--port", str(args.port), "--log-level", args.log_level, "--background-child"]
    for value in args.replicas:
        argv += ["--replicas", value]
    if args.no_restart:
        argv.append("--no-restart")
    if args.only:
        argv += ["--only", args.only]
    args.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = args.state_dir / "up.log"
    with open(log_path, "ab") as log:
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,  # noqa: S603 an argv list, no shell: this same CLI re-run with its own arguments
                                 start_new_session=True)
    print(f"starting the mesh in the background (pid {child.pid}); progress in {log_path}", flush=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"error: the mesh failed to start:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
            return 1
        state = read_state(args.state_dir)
        if state:
            print(f"protomesh is up. REST and gRPC on {state['gateway']}. `protomesh status`, `protomesh down`.")
            print(f'Call with a token: curl -H "Authorization: Bearer $(.venv/bin/protomesh token)" '
                  f"http://{state['gateway']}/v1/agents")
            _show_admin_password(args.state_dir)
            return 0
        time.sleep(0.5)
    print(f"error: the mesh did not come up within 300s; see {log_path}", file=sys.stderr)
    return 1


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310 an http:// URL the mesh builds from its own addresses, never a caller's
            return reply.status == 200
    except OSError:
        return False


def cmd_status(args: argparse.Namespace) -> int:
    """Print the health of every part of a running mesh; exit 1 if any part is unhealthy."""
    state = read_state(args.state_dir)
    if not state:
        print(f"no mesh is running from {args.state_dir}; start one with `protomesh up` (or scripts/up)")
        return 1
    rows = []
    probe_tls = Mesh.probe_files(Path(args.state_dir))  # replicas answer mTLS only
    for proc in state["processes"]:
        alive = pid_alive(proc["pid"] or 0)
        if not alive:
            health = "DOWN"
        elif "address" in proc:
            serving = grpc_serving(proc["address"], proc["grpc_service"], files=probe_tls,
                                   mesh_service=proc.get("service", ""))
            health = "SERVING" if serving else "NOT_SERVING"
        elif proc["name"] == "envoy":
            health = "READY" if _http_ok(f"http://{state['admin']}/ready") else "NOT_READY"
        else:
            health = "RUNNING"
        rows.append((proc["name"], str(proc["pid"]), proc.get("address", ""), health))
    if args.json:
        print(json.dumps({"gateway": state["gateway"], "parts": [dict(zip(("name", "pid", "address", "health"), r,
                                                                           strict=True)) for r in rows]}))
    else:
        print(f"gateway {state['gateway']} (REST + gRPC), Envoy admin {state['admin']}")
        width = max(len(r[0]) for r in rows)
        for name, pid, address, health in rows:
            print(f"  {name:<{width}}  pid {pid:>7}  {address:<16}  {health}")
        print("\n".join(fault_status_lines(args.state_dir)))
        print("\n".join(release_status_lines(args.state_dir)))
    bad = [r for r in rows if r[3] in ("DOWN", "NOT_SERVING", "NOT_READY")]
    return 1 if bad else 0


def cmd_down(args: argparse.Namespace) -> int:
    """Stop a mesh started with `up --detach` (or from another terminal)."""
    state = read_state(args.state_dir)
    if not state:
        print(f"no mesh is running from {args.state_dir}")
        return 0
    pid = state["supervisor_pid"]
    print(f"stopping the mesh (supervisor pid {pid}) ...", flush=True)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        print(f"error: supervisor {pid} did not stop within 60s", file=sys.stderr)
        return 1
    print("stopped")
    return 0


def cmd_scale(args: argparse.Namespace) -> int:
    """Change the replica count of services in the running mesh and wait until the gateway routes to them."""
    state = read_state(args.state_dir)
    if not state:
        print(f"no mesh is running from {args.state_dir}; start one with `protomesh up`", file=sys.stderr)
        return 1
    desired = dict(state.get("replicas", {}))
    for value in args.counts:
        name, _, count = value.partition("=")
        if name not in desired or not count.isdigit() or not 1 <= int(count) <= 16:
            print(f"error: {value!r}: expected SERVICE=N with N from 1 to 16 and SERVICE one of "
                  f"{', '.join(sorted(desired))}", file=sys.stderr)
            return 2
        desired[name] = int(count)
    path = args.state_dir / DESIRED_FILE
    path.write_text(json.dumps(desired))
    print(f"asked the mesh for {', '.join(f'{k}={v}' for k, v in sorted(desired.items()))} ...", flush=True)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        current = read_state(args.state_dir) or {}
        if current.get("replicas") == desired:
            print("done: " + ", ".join(f"{k}={v}" for k, v in sorted(desired.items())))
            return 0
        time.sleep(0.3)
    print(f"error: the mesh did not reach {desired} within {args.timeout:.0f}s; see `protomesh status`",
          file=sys.stderr)
    return 1


def _mesh_dir(args: argparse.Namespace, key: str, default: str) -> Path:
    state = read_state(args.state_dir) or {}
    return Path(state.get(key) or args.state_dir / default)


def cmd_registry(args: argparse.Namespace) -> int:
    """Show what the registry holds: every live replica of every service, serving or not."""
    state = read_state(args.state_dir) or {}
    nats_url = os.environ.get("NATS_URL") or state.get("nats_url")
    consul = os.environ.get("CONSUL_HTTP_ADDR")
    if not nats_url and not consul:
        print("no registry: start the mesh (`protomesh up`), or set NATS_URL or CONSUL_HTTP_ADDR", file=sys.stderr)
        return 1

    async def rows() -> list[Instance]:
        registry = await registry_from_env(consul, nats_url)
        assert registry is not None  # noqa: S101 narrows a type for mypy, not a check of input: under -O only the error raised would differ
        try:
            return [i for name in load_catalog().names
                    for i in await registry.instances(name, healthy_only=False)]
        finally:
            await registry.close()

    instances = asyncio.run(rows())
    if args.json:
        print(json.dumps([{"service": i.service, "instance_id": i.instance_id, "target": i.target,
                           "serving": i.serving, "version": i.version, "meta": i.meta} for i in instances]))
        return 0
    # The mesh's NATS URL carries its password: print it masked, never as it is.
    print(f"registry: {'Consul at ' + consul if consul else 'NATS KV at ' + safe_url(str(nats_url))}")
    now = time.time()
    for i in instances:
        age = f"{now - i.heartbeat_at:4.1f}s ago" if i.heartbeat_at else ""
        print(f"  {i.service:<13} {i.instance_id:<16} {i.target:<21} {'SERVING' if i.serving else 'NOT_SERVING':<12}"
              f" heartbeat {age}")
    if not instances:
        print("  (empty)")
    return 0


def cmd_traces(args: argparse.Namespace) -> int:
    """List recent traces kept by the local mesh."""
    traces_dir = _mesh_dir(args, "traces_dir", "traces")
    rows = list_traces(traces_dir, limit=args.limit, service=args.service, min_ms=args.min_ms)
    if not rows:
        print(f"no traces in {traces_dir}; make a call through the gateway first (tracing is on while the "
              "mesh runs without OTEL_EXPORTER_OTLP_ENDPOINT)")
        return 1
    for row in rows:
        started = time.strftime("%H:%M:%S", time.localtime(row["start_ns"] / 1e9))
        print(f"{started}  {row['trace_id']}  {row['duration_ms']:9.2f} ms  {row['spans']:3d} spans  "
              f"{row['root']}  [{', '.join(row['services'])}]")
    print("\nshow one with: protomesh trace TRACE_ID (a unique prefix is enough)")
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """Show one trace as an indented tree with durations."""
    tree = show_trace(_mesh_dir(args, "traces_dir", "traces"), args.trace_id)
    if tree is None:
        print(f"no single trace matches {args.trace_id!r}; list them with `protomesh traces`", file=sys.stderr)
        return 1
    print(tree)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """Show (and follow) the mesh's logs, filtered by service, level and trace id."""
    log_dir = _mesh_dir(args, "log_dir", "logs")
    if not log_dir.exists():
        print(f"no logs in {log_dir}; start the mesh with `protomesh up`", file=sys.stderr)
        return 1
    flt = LogFilter(service=args.service, level=args.level, trace_id=args.trace)
    for entry in read_logs(log_dir, flt, last=args.lines):
        print(format_entry(entry), flush=True)
    if args.follow:
        try:
            for entry in follow_logs(log_dir, flt):
                print(format_entry(entry), flush=True)
        except KeyboardInterrupt:
            return 0
    return 0


def cmd_envoy_config(args: argparse.Namespace) -> int:
    """Print (or write) the Envoy configuration generated from the contracts."""
    from chassis.tooling.envoy_config import compose_envoy_config

    config = compose_envoy_config(listen_port=args.port, admin_port=args.admin_port)
    text = json.dumps(config, indent=2) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_new_service(args: argparse.Namespace) -> int:
    """Scaffold a service: its contract and its folder; say what to do next."""
    from chassis.tooling.scaffold import ScaffoldError, check_name, write

    try:
        names = check_name(args.name)
        paths = write(names)
    except ScaffoldError as exc:
        print(f"protomesh new-service: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    print(f"""
next:
  1. write the RPCs in proto/protomesh/{names.name}/v1/{names.name}_service.proto
  2. scripts/gen_protos          # stubs, descriptor set, Envoy and deploy files
  3. implement them in services/{names.name}/servicer.py (tests: services/{names.name}/tests/)
  4. scripts/up                  # then: curl -s localhost:8080/v1/{names.name}/info""")
    return 0


def cmd_apidoc(args: argparse.Namespace) -> int:
    """Print (or write) the OpenAPI or AsyncAPI document generated from the contracts' descriptor set."""
    from chassis.tooling.apidocs import build_asyncapi, build_openapi, dump, load_contracts

    contracts = load_contracts()
    if args.service and args.service not in contracts.catalog.names:
        print(f"protomesh {args.command}: no service {args.service!r}; known: {', '.join(contracts.catalog.names)}",
              file=sys.stderr)
        return 2
    build = build_openapi if args.command == "openapi" else build_asyncapi
    text = dump(build(contracts, args.service), args.format)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_gen(args: argparse.Namespace) -> int:
    """Write (or with --check, compare) the deploy files derived from the contracts and services/*/deploy.toml."""
    from chassis.tooling.deploy import run_gen

    return run_gen(check=args.check)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="protomesh",
        description="A Python gRPC service mesh: real Envoy, NATS and PostgreSQL on one machine with one command.",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("PROTOMESH_STATE_DIR", RUN_DIR)),
                        help="where the mesh keeps data, logs and its state file (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start PostgreSQL, NATS, every service and Envoy; Ctrl-C stops all",
                        description="Start the whole mesh and serve REST and gRPC on one gateway port. "
                                    "Uses DATABASE_URL / NATS_URL instead of the embedded servers when set.")
    up.add_argument("--port", type=int, default=8080, help="gateway port on 127.0.0.1 (default: %(default)s)")
    up.add_argument("--replicas", action="append", default=[], metavar="N|SERVICE=N",
                    help="replicas per service (default 2); repeat SERVICE=N for one service, e.g. agent=3")
    up.add_argument("--detach", "-d", action="store_true", help="run in the background; stop with `protomesh down`")
    up.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                    help="log level of the services (default: %(default)s)")
    up.add_argument("--only", metavar="SERVICE[,SERVICE]", help="run only these services (default: all)")
    up.add_argument("--no-restart", action="store_true", help="do not restart a process that exits on its own")
    up.add_argument("--background-child", action="store_true", help=argparse.SUPPRESS)
    up.set_defaults(func=cmd_up)

    status = sub.add_parser("status", help="show the health of every part of the running mesh")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    down = sub.add_parser("down", help="stop a mesh running in the background")
    down.set_defaults(func=cmd_down)

    scale = sub.add_parser("scale", help="change the number of replicas of a service in the running mesh",
                           description="Start or stop replicas; new ones get traffic as soon as they register.")
    scale.add_argument("counts", nargs="+", metavar="SERVICE=N", help="e.g. agent=3")
    scale.add_argument("--timeout", type=float, default=90, help="seconds to wait (default: %(default)s)")
    scale.set_defaults(func=cmd_scale)

    registry = sub.add_parser("registry", help="show every replica the registry knows, with its health")
    registry.add_argument("--json", action="store_true", help="machine-readable output")
    registry.set_defaults(func=cmd_registry)

    traces = sub.add_parser("traces", help="list recent traces of the local mesh")
    traces.add_argument("--limit", type=int, default=20, help="how many (default: %(default)s)")
    traces.add_argument("--service", help="only traces that touch this service")
    traces.add_argument("--min-ms", type=float, default=0.0, help="only traces slower than this")
    traces.set_defaults(func=cmd_traces)

    trace = sub.add_parser("trace", help="show one trace as a tree with durations")
    trace.add_argument("trace_id", help="trace id, or a unique prefix of it")
    trace.set_defaults(func=cmd_trace)

    logs = sub.add_parser("logs", help="show the logs of every service, filtered; -f follows them")
    logs.add_argument("--service", help="only this service, e.g. agent")
    logs.add_argument("--level", default="debug", choices=sorted(LEVELS, key=LEVELS.__getitem__),
                      help="lowest level shown (default: all)")
    logs.add_argument("--trace", help="only lines of this trace id (or prefix)")
    logs.add_argument("--lines", "-n", type=int, default=50, help="last N lines first (0: all; default 50)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.set_defaults(func=cmd_logs)

    add_deadletter_commands(sub)
    add_identity_commands(sub)
    add_audit_commands(sub)
    add_fault_commands(sub)
    add_workflow_commands(sub)
    add_release_commands(sub)
    add_hosts_commands(sub)

    envoy = sub.add_parser("envoy-config", help="print the Envoy config for compose (services reached by DNS name)")
    envoy.add_argument("--port", type=int, default=8080, help="listener port (default: %(default)s)")
    envoy.add_argument("--admin-port", type=int, default=9901, help="admin port (default: %(default)s)")
    envoy.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
    envoy.set_defaults(func=cmd_envoy_config)

    for name, what in (("openapi", "OpenAPI 3.1 of the gateway's REST routes"),
                       ("asyncapi", "AsyncAPI 3.0 of the domain events on NATS")):
        doc = sub.add_parser(name, help=f"print the {what}, generated from the contracts",
                             description=f"The {what}, generated from gen/protomesh.binpb (never hand-written).")
        doc.add_argument("--service", metavar="NAME", help="only this service, e.g. agent (default: the whole mesh)")
        doc.add_argument("--format", choices=["json", "yaml"], default="json", help="default: %(default)s")
        doc.add_argument("--output", "-o", type=Path, help="write to this file instead of stdout")
        doc.set_defaults(func=cmd_apidoc)

    gen = sub.add_parser("gen", help="write compose, Kubernetes, Envoy and Prometheus files from the contracts",
                         description="Regenerate the deploy files derived from gen/protomesh.binpb and each "
                                     "services/<name>/deploy.toml (scripts/gen_protos runs this after codegen).")
    gen.add_argument("--check", action="store_true", help="write nothing; exit 1 listing the files that are stale")
    gen.set_defaults(func=cmd_gen)

    new = sub.add_parser("new-service", help="scaffold a service: a contract and a folder that build, start and answer",
                         description="Writes proto/protomesh/NAME/v1/NAME_service.proto (standard info and health "
                                     "RPCs, a call policy) and services/NAME/ (app, settings, deps, servicer, a test). "
                                     "Then run scripts/gen_protos; see docs/adding-a-service.md.")
    new.add_argument("name", help="lowercase letters and digits, e.g. orders")
    new.set_defaults(func=cmd_new_service)

    bootstrap = sub.add_parser("bootstrap-db", help="DATABASE_URL deployments: a role and schema per service",
                               description="As an admin of the server, create (or update) one login role per service "
                                           "that owns only its own schema; passwords are generated once and kept "
                                           "(0600) with each service's DATABASE_URL in --secrets-dir. Idempotent.")
    bootstrap.add_argument("--admin-url", help="postgresql:// URL of a role that may create roles "
                                               "(default: $DATABASE_ADMIN_URL)")
    bootstrap.add_argument("--services", metavar="SERVICE[,SERVICE]", help="only these services (default: all)")
    bootstrap.add_argument("--secrets-dir", type=Path, help="where passwords and URLs are kept "
                                                            "(default: <state dir>/credentials)")
    bootstrap.add_argument("--show", action="store_true", help="print the URLs (with passwords) instead of paths")
    bootstrap.set_defaults(func=cmd_bootstrap_db)
    return parser


def cmd_bootstrap_db(args: argparse.Namespace) -> int:
    """Create one role and schema per service on a DATABASE_URL deployment's server; print their URLs."""
    admin_url = args.admin_url or os.environ.get("DATABASE_ADMIN_URL")
    if not admin_url:
        print("give the server's admin URL (a role that may create roles): --admin-url or DATABASE_ADMIN_URL",
              file=sys.stderr)
        return 2
    names = load_catalog().names
    wanted = [n.strip() for n in args.services.split(",")] if args.services else names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    secrets_dir = args.secrets_dir or args.state_dir / "credentials"
    urls = bootstrap_database(admin_url, wanted, secrets_dir)
    print(f"roles and schemas ready; each service's DATABASE_URL is kept in {secrets_dir}/database-url-<service>")
    for name, url in sorted(urls.items()):
        print(f"{name}\t{url}" if args.show else f"{name}\t{secrets_dir / f'database-url-{name}'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `protomesh` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
