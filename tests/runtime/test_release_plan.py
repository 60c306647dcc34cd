"""Release decisions without a mesh: requests and their checks, the blue/green weights Envoy gets, the
figures a step is judged by, the migration rule, and the Kubernetes plan rendered from the generated
manifests (no cluster here: every object it names must exist in them and every change must select
what it says)."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from chassis.tooling.release_k8s import COLOUR_LABEL, KubernetesPlanError, green_for, load_manifests, plan_release
from chassis.tooling.release_plan import PlanError, ReleaseRequest, colour_weigher, migration_problems, parse_steps
from chassis.tooling.release_slo import (
    Counts,
    Figures,
    Thresholds,
    gateway_errors,
    judge,
    parse_envoy_hosts,
    parse_replica_metrics,
)

SERVICES = ["agent", "context"]
K8S_VERSION = "1.33"
"""The Kubernetes API the generated manifests are validated against (tests/contract/test_deploy_manifests.py)."""

# --- requests --------------------------------------------------------------------------------------------


def test_a_request_survives_its_file() -> None:
    request = ReleaseRequest("agent", steps=(5.0, 100.0), bake_seconds=2, env={"FEATURE_X": "on"}, replicas=3,
                             thresholds=Thresholds(0.01, 2.0, 50.0, 7))
    assert ReleaseRequest.from_json(request.to_json()) == request


@pytest.mark.parametrize(("changes", "names"), [
    ({"service": "billing"}, "SERVICE 'billing'"),
    ({"steps": (5.0, 50.0)}, "--steps"),
    ({"steps": (50.0, 5.0, 100.0)}, "--steps"),
    ({"steps": (5.0, 120.0)}, "--steps"),
    ({"bake_seconds": 0}, "--bake"),
    ({"thresholds": Thresholds(max_error_rate=1.5)}, "--max-error-rate"),
    ({"thresholds": Thresholds(p99_ratio=0.5)}, "--p99-ratio"),
    ({"module": "services.agent; rm -rf /"}, "--module"),
    ({"env": {"DATABASE_URL": "postgresql://elsewhere"}}, "--env DATABASE_URL"),
    ({"env": {"lower": "x"}}, "--env lower"),
    ({"replicas": 17}, "--replicas"),
])
def test_a_wrong_request_is_refused_naming_its_option(changes: dict[str, Any], names: str) -> None:
    request = ReleaseRequest(**{"service": "agent", **changes})
    with pytest.raises(PlanError, match=names.replace("(", r"\(").replace("+", r"\+")):
        request.check(SERVICES)


def test_steps_parse_and_bad_ones_name_the_option() -> None:
    assert parse_steps("5,25,50,100") == (5.0, 25.0, 50.0, 100.0)
    with pytest.raises(PlanError, match="--steps"):
        parse_steps("5,a,100")


# --- the weights Envoy gets ------------------------------------------------------------------------------

BLUE = [("127.0.0.1", 1001), ("127.0.0.1", 1002)]
GREEN = [("127.0.0.1", 2001), ("127.0.0.1", 2002)]
GREEN_TARGETS = frozenset(f"{h}:{p}" for h, p in GREEN)


def shares(endpoints: list[dict[str, Any]]) -> dict[str, float]:
    """Share of the calls per colour that Envoy's weighted round robin gives (DRAINING hosts get none)."""
    live = [e for e in endpoints if e.get("health_status") != "DRAINING"]
    total = sum(e["load_balancing_weight"] for e in live)
    green = sum(e["load_balancing_weight"] for e in live if e.get("metadata"))
    return {"green": green / total, "blue": (total - green) / total}


@pytest.mark.parametrize("percent", [5, 25, 50, 75])
def test_green_gets_the_step_share_and_is_flagged_canary(percent: int) -> None:
    endpoints = colour_weigher(GREEN_TARGETS, percent / 100)(BLUE + GREEN)
    assert len(endpoints) == 4
    assert shares(endpoints)["green"] == pytest.approx(percent / 100, abs=0.001)
    canary = [e for e in endpoints if e.get("metadata", {}).get("filter_metadata", {}).get("envoy.lb", {})]
    assert {e["endpoint"]["address"]["socket_address"]["port_value"] for e in canary} == {2001, 2002}


@pytest.mark.parametrize(("share", "drained"), [(0.0, {2001, 2002}), (1.0, {1001, 1002})])
def test_the_colour_without_traffic_stays_listed_but_draining(share: float, drained: set[int]) -> None:
    # Envoy keeps a host that left the file while it passes health checks: it must be drained, not dropped.
    endpoints = colour_weigher(GREEN_TARGETS, share)(BLUE + GREEN)
    assert {e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints
            if e.get("health_status") == "DRAINING"} == drained
    assert all(e["load_balancing_weight"] == 1 for e in endpoints if e.get("health_status") == "DRAINING")


def test_without_blue_endpoints_green_takes_everything() -> None:
    endpoints = colour_weigher(GREEN_TARGETS, 0.05)(GREEN)
    assert shares(endpoints)["green"] == 1.0


# --- figures and verdicts --------------------------------------------------------------------------------

LIST = "/protomesh.context.v1.ContextService/ListContexts"
GET = "/protomesh.context.v1.ContextService/GetContext"


def sample(metric: str, service: str, method: str, value: int, **labels: str) -> str:
    extra = "".join(f',{key}="{label}"' for key, label in labels.items())
    return f'{metric}{{service="{service}",method="{method}"{extra}}} {value}'


METRICS = "\n".join([
    "# TYPE protomesh_rpc_requests_total counter",
    sample("protomesh_rpc_requests_total", "context", LIST, 90, code="OK"),
    sample("protomesh_rpc_requests_total", "context", LIST, 6, code="INTERNAL"),
    sample("protomesh_rpc_requests_total", "context", GET, 4, code="NOT_FOUND"),
    sample("protomesh_rpc_requests_total", "context", "/grpc.health.v1.Health/Check", 50, code="UNAVAILABLE"),
    sample("protomesh_rpc_requests_total", "agent", "/protomesh.agent.v1.AgentService/ListAgents", 9,
           code="INTERNAL"),
    "# TYPE protomesh_rpc_duration_seconds histogram",
    *(sample("protomesh_rpc_duration_seconds_bucket", "context", method, count, le=le)
      for method, counts in ((LIST, (50, 96, 96)), (GET, (4, 4, 4)))
      for le, count in zip(("0.01", "0.1", "+Inf"), counts, strict=True)),
    "",
])


def test_replica_metrics_count_server_errors_only_and_leave_out_health_checks() -> None:
    counts = parse_replica_metrics(METRICS, "context")
    assert (counts.requests, counts.errors) == (100, 6)  # NOT_FOUND is the caller's; health and agent left out
    assert counts.buckets == {0.01: 54, 0.1: 100, math.inf: 100}
    p99 = counts.quantile(0.99)
    assert p99 is not None and 0.01 < p99 <= 0.1


def test_a_window_is_the_difference_and_a_restart_counts_from_zero() -> None:
    before = Counts(100, 5, {0.1: 100, math.inf: 100})
    after = Counts(130, 8, {0.1: 125, math.inf: 130})
    assert after.since(before) == Counts(30, 3, {0.1: 25, math.inf: 30})
    restarted = Counts(10, 0, {0.1: 10, math.inf: 10})
    assert restarted.since(before) == restarted


def test_envoy_host_stats_add_what_never_reached_a_replica() -> None:
    def clusters(errors: int) -> str:
        return json.dumps({"cluster_statuses": [{"name": "context", "host_statuses": [
            {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 2001}},
             "stats": [{"name": "rq_error", "value": str(errors)}, {"name": "rq_total", "value": "50"}]},
            {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 1001}},
             "stats": [{"name": "rq_error", "value": "7"}]}]}]})
    before, after = parse_envoy_hosts(clusters(1), "context"), parse_envoy_hosts(clusters(4), "context")
    assert gateway_errors(before, after, GREEN_TARGETS) == 3


THRESHOLDS = Thresholds(max_error_rate=0.05, p99_ratio=1.5, p99_slack_ms=100, min_requests=20)
BLUE_FIGURES = Figures(500, 0, 20.0, 40.0)


def test_a_healthy_green_passes() -> None:
    green = Figures(40, 1, 22.0, 45.0)
    assert judge(green, green, BLUE_FIGURES, THRESHOLDS).healthy


def test_an_error_rate_over_the_threshold_rolls_back() -> None:
    green = Figures(40, 8, 22.0, 45.0)
    verdict = judge(green, green, BLUE_FIGURES, THRESHOLDS)
    assert verdict.breach is not None and "error rate 20.0% over 5.0%" in verdict.breach


def test_a_burst_of_errors_rolls_back_before_the_sample_is_complete() -> None:
    assert judge(Figures(6, 3, 1.0, 1.0), Figures(6, 3, 1.0, 1.0), BLUE_FIGURES, THRESHOLDS).breach
    one = Figures(6, 1, 1.0, 1.0)
    assert judge(one, one, BLUE_FIGURES, THRESHOLDS).enough is False  # one error in six: wait and see


def test_slower_than_blue_by_ratio_and_slack_rolls_back_on_p90_then_p99() -> None:
    few = Figures(40, 0, 450.0, 480.0)
    verdict = judge(few, few, BLUE_FIGURES, THRESHOLDS)
    assert verdict.breach is not None and verdict.breach.startswith("green p90 450 ms over 120 ms")
    many = Figures(400, 0, 30.0, 480.0)
    verdict = judge(many, many, BLUE_FIGURES, THRESHOLDS)
    assert verdict.breach is not None and verdict.breach.startswith("green p99 480 ms over 140 ms")


def test_a_few_ms_slower_is_noise_not_a_regression() -> None:
    green = Figures(400, 0, 30.0, 120.0)  # 3x blue's p99, but within 100 ms of it
    assert judge(green, green, BLUE_FIGURES, THRESHOLDS).healthy


# --- migrations: expand, then contract ---------------------------------------------------------------------


def write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(sql)


def test_applied_and_marked_additive_migrations_pass(tmp_path: Path) -> None:
    write(tmp_path, "001_init.sql", "CREATE TABLE t (id int);\nDROP TABLE old;")  # applied: not judged again
    write(tmp_path, "002_add.sql", "-- release: expand\nALTER TABLE t ADD COLUMN note text;\n"
                                    "CREATE INDEX t_note ON t (note);  -- DROP COLUMN would be in a comment")
    write(tmp_path, "003_cleanup.sql", "-- release: contract (002 stopped using it)\nALTER TABLE t DROP COLUMN legacy;")
    assert migration_problems(tmp_path, applied={1}) == []


def test_a_new_migration_without_a_marker_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "002_add.sql", "ALTER TABLE t ADD COLUMN note text;")
    [problem] = migration_problems(tmp_path, applied={1})
    assert "002_add.sql" in problem and "-- release: expand" in problem


@pytest.mark.parametrize("statement", [
    "ALTER TABLE t DROP COLUMN note", "ALTER TABLE t RENAME COLUMN a TO b", "ALTER TABLE t ALTER COLUMN a TYPE bigint",
    "ALTER TABLE t ALTER COLUMN a SET NOT NULL", "DROP TABLE t", "TRUNCATE t"])
def test_an_expand_migration_that_breaks_blue_is_refused(tmp_path: Path, statement: str) -> None:
    write(tmp_path, "002_change.sql", f"-- release: expand\n{statement};")
    [problem] = migration_problems(tmp_path, applied={1})
    assert "marked expand but" in problem and "contract" in problem


# --- Kubernetes: two Deployments and the Service's selector, rendered from the generated manifests ---------


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("service", ["agent", "context"])
def test_the_kubernetes_plan_drives_two_deployments_and_the_service_selector(service: str) -> None:
    plan = plan_release(service, (5.0, 25.0, 50.0, 100.0), 60, image="registry.example/protomesh:2")
    blue, svc = load_manifests(service)
    green = plan.green
    blue_pods = blue["spec"]["template"]["metadata"]["labels"]
    green_pods = green["spec"]["template"]["metadata"]["labels"]
    # Green: its own name, a selector that matches its pods and not blue's, the new image, no other change.
    assert green["metadata"]["name"] == f"{service}-green" != blue["metadata"]["name"]
    assert selects(green["spec"]["selector"]["matchLabels"], green_pods)
    assert not selects(green["spec"]["selector"]["matchLabels"], blue_pods)
    container = next(c for c in green["spec"]["template"]["spec"]["containers"] if c["name"] == service)
    assert container["image"] == "registry.example/protomesh:2"
    assert {k: v for k, v in green["spec"]["template"]["spec"].items() if k != "containers"} == \
        {k: v for k, v in blue["spec"]["template"]["spec"].items() if k != "containers"}
    # During the steps the Service selects both colours; the shares grow and end with green alone.
    assert selects(svc["spec"]["selector"], blue_pods) and selects(svc["spec"]["selector"], green_pods)
    effective = [s.effective_share for s in plan.steps]
    assert effective == sorted(effective) and effective[-1] == 1.0
    assert all(s.effective_share >= s.percent / 100 for s in plan.steps)
    # The last step's selector patch keeps green and drops blue; rollback's restores the generated one.
    last_patch = selector_patch(plan.steps[-1].actions[-1].argv)
    assert selects(last_patch, green_pods) and not selects(last_patch, blue_pods)
    assert selector_patch(plan.rollback[0].argv) == svc["spec"]["selector"]
    # Every command names objects the manifests (or the plan's green Deployment) define, in their namespace.
    names = {("deployment", blue["metadata"]["name"]), ("deployment", green["metadata"]["name"]),
             ("service", svc["metadata"]["name"])}
    for action in [*plan.start, *(a for s in plan.steps for a in s.actions), *plan.promote, *plan.rollback]:
        argv = action.argv
        assert argv[:3] == ("kubectl", "-n", blue["metadata"]["namespace"]), argv
        if argv[3] in ("scale", "rollout", "patch", "delete"):
            target = argv[5] if argv[3] == "rollout" else argv[4]
            kind, _, name = target.partition("/")
            if not name:
                kind, name = argv[4], argv[5]
            assert (kind, name) in names, argv
        assert shlex.split(action.as_dict()["command"]) == list(argv)
    assert plan.promote[0].argv[-2:] == (f"deployment/{service}", "--replicas=0")
    assert COLOUR_LABEL in green_pods and COLOUR_LABEL not in blue_pods


@pytest.mark.parametrize("service", ["agent", "context"])
def test_what_the_plan_applies_is_valid_kubernetes(service: str) -> None:
    # The green Deployment as applied, and the Service as each selector patch leaves it, against the API schemas.
    plan = plan_release(service, (5.0, 100.0), 60, image="registry.example/protomesh:2")
    _, svc = load_manifests(service)
    kubernetes_validate.validate(plan.green, K8S_VERSION, strict=True)
    for argv in (plan.steps[-1].actions[-1].argv, plan.rollback[0].argv):
        patched = {**svc, "spec": {**svc["spec"], "selector": selector_patch(argv)}}
        kubernetes_validate.validate(patched, K8S_VERSION, strict=True)


def selector_patch(argv: tuple[str, ...]) -> dict[str, str]:
    assert argv[3] == "patch" and argv[-2] == "-p"
    selector: dict[str, str] = json.loads(argv[-1])["spec"]["selector"]
    return selector


def test_green_pods_per_step_round_up_to_at_least_the_share() -> None:
    assert [green_for(p, 2) for p in (5, 25, 50, 100)] == [1, 1, 2, 2]
    assert [green_for(p, 10) for p in (5, 25, 50, 100)] == [1, 4, 10, 10]


def test_an_unknown_service_has_no_manifest_to_plan_from() -> None:
    with pytest.raises(KubernetesPlanError, match="no generated manifest"):
        plan_release("billing", (50.0, 100.0), 30)
