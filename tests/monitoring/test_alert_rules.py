"""The alert rules and Prometheus' config pass promtool's checks, and every rule's unit tests pass.

The unit tests are deploy/observability/tests/*.yml (`promtool test rules`); a rule added to alerts.yml without
a case there that fires it and one that keeps it quiet fails here. Needs Debian's promtool
(scripts/install_monitoring_tools); without it these tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.prometheus_harness import ALERT_RULES, OBSERVABILITY, PRODUCTION_CONFIG, write_local_config
from tests.monitoring.rule_timing import compressed_rules, duration_ms, scaled_expression

UNIT_TESTS = sorted((OBSERVABILITY / "tests").glob("*.yml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed: run "
                                    "scripts/install_monitoring_tools (Debian's prometheus package)")


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool; the completed process (its output says what failed)."""
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd)


def alert_names() -> list[str]:
    document = yaml.safe_load(ALERT_RULES.read_text())
    return [rule["alert"] for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def unit_cases() -> dict[str, dict[str, int]]:
    """alert name -> {"firing": cases expecting it, "quiet": cases expecting none}, over every unit test file."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"firing": 0, "quiet": 0})
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                counts[case["alertname"]]["firing" if case.get("exp_alerts") else "quiet"] += 1
    return counts


@needs_promtool
def test_alert_rules_pass_promtool_check() -> None:
    checked = promtool("check", "rules", ALERT_RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_names())} rules found" in checked.stdout, checked.stdout


@needs_promtool
def test_every_rule_unit_test_passes() -> None:
    assert UNIT_TESTS, f"no unit test files in {OBSERVABILITY / 'tests'}"
    tested = promtool("test", "rules", *UNIT_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "FAILED" not in tested.stdout and tested.stdout.count("SUCCESS") == len(UNIT_TESTS), tested.stdout


def untested(alerts: list[str], cases: dict[str, dict[str, int]]) -> list[str]:
    """The alerts lacking a unit case that fires them or one that keeps them quiet."""
    return [name for name in alerts if not cases.get(name, {}).get("firing") or not cases.get(name, {}).get("quiet")]


def test_every_alert_has_a_firing_and_a_quiet_unit_case() -> None:
    cases = unit_cases()
    assert untested([*alert_names(), "RuleAddedWithoutTests"], cases) == ["RuleAddedWithoutTests"]
    missing = untested(alert_names(), cases)
    assert not missing, f"alerts without a case that fires them and one that keeps them quiet: {missing}"
    unknown = sorted(set(cases) - set(alert_names()))
    assert not unknown, f"unit cases for alerts alerts.yml does not have: {unknown}"


def unit_tests_against(document: dict[str, Any], folder: Path) -> subprocess.CompletedProcess[str]:
    """The unit test files run against `document` in place of alerts.yml (copied beside it into folder)."""
    (folder / "alerts.yml").write_text(yaml.safe_dump(document))
    tests = folder / "tests"
    tests.mkdir()
    for path in UNIT_TESTS:
        shutil.copy(path, tests / path.name)
    return promtool("test", "rules", *sorted(tests.glob("*.yml")))


@needs_promtool
@pytest.mark.parametrize("change_ms", [-15_000, 15_000], ids=["sooner", "later"])
def test_every_rule_firing_a_step_sooner_or_later_fails_its_unit_tests(tmp_path: Path, change_ms: int) -> None:
    """The unit cases hold each `for:` exactly (to the 15 s evaluation step): quiet the step before it ends,
    firing when it does. Every rule's `for:` moved by one step must make that rule's cases fail."""
    document = yaml.safe_load(ALERT_RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["for"] = f"{duration_ms(rule['for']) + change_ms}ms"
    tested = unit_tests_against(document, tmp_path)
    output = tested.stdout + tested.stderr
    assert tested.returncode != 0, output
    held = {name for name in alert_names() if f"alertname: {name}," in output}
    assert held == set(alert_names()), f"no unit case notices these rules' `for:` moved: " \
                                       f"{sorted(set(alert_names()) - held)}"


@needs_promtool
def test_production_prometheus_config_passes_promtool_check(tmp_path: Path) -> None:
    """prometheus.yml as compose mounts it: its rule file beside it (compose puts both in /etc/prometheus)."""
    config = yaml.safe_load(PRODUCTION_CONFIG.read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    shutil.copy(ALERT_RULES, tmp_path / "alerts.yml")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = promtool("check", "config", tmp_path / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_the_live_tests_config_and_compressed_rules_pass_promtool_check(tmp_path: Path) -> None:
    config = write_local_config(tmp_path, "127.0.0.1:9901")
    checked = promtool("check", "config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout and "rules found" in checked.stdout, checked.stdout


def test_compression_divides_every_duration_and_nothing_else() -> None:
    assert scaled_expression("delta(max(x)[15m:1m]) > 0 and rate(y[5m]) > 0.05", 30) == \
        "delta(max(x)[30000ms:2000ms]) > 0 and rate(y[10000ms]) > 0.05"
    assert scaled_expression('up{job="services"} == 0', 30) == 'up{job="services"} == 0'
    assert duration_ms("1h30m") == 5_400_000
    rule = {"alert": "A", "expr": "rate(x[2m]) > 1", "for": "1m", "labels": {"severity": "page"}}
    document: dict[str, Any] = {"groups": [{"name": "g", "rules": [rule]}]}
    assert compressed_rules(document, 60)["groups"][0]["rules"][0] == {
        "alert": "A", "expr": "rate(x[2000ms]) > 1", "for": "1000ms", "labels": {"severity": "page"}}
    assert document["groups"][0]["rules"][0]["for"] == "1m"  # the original is left as it was
