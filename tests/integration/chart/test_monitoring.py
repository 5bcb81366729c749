"""The chart's PrometheusRule and Grafana dashboard, checked with Prometheus' own promtool.

- `promtool check rules` parses every alert expression and annotation template as rendered.
- `promtool test rules` evaluates the alerts over synthetic series: each fires on its symptom with
  the labels a receiver routes on, and none fires on a healthy release (including a standby
  operator that still holds the gauges of its last term as leader).
- Every dashboard query parses as PromQL (as a recording rule, Grafana's interval variables
  replaced by a duration).

That each metric the rules and the dashboard name is really exported is checked against a live
scrape of the installed chart in `test_chart.py`.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentcore.devenv import tools
from tests.chartutil import CHART, MINIMAL, one, render

pytestmark = pytest.mark.integration

NS = "agentcore"
VALUES = {
    **MINIMAL,
    "metrics": {
        "prometheusRule": {"enabled": True, "alertLabels": {"team": "ml-platform"}, "queuedMinutes": 15},
        "grafanaDashboard": {"enabled": True},
    },
}
DASHBOARD = CHART / "dashboards" / "agentcore-training.json"


def rule_groups(values: dict[str, Any] = VALUES) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = one(render(values, namespace=NS), "PrometheusRule")["spec"]["groups"]
    return groups


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools.promtool_binary()), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def alert_names(groups: list[dict[str, Any]]) -> set[str]:
    return {r["alert"] for g in groups for r in g["rules"] if "alert" in r}


def test_rules_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}))
    proc = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout, proc.stdout


def test_promtool_check_catches_a_broken_rule(tmp_path: Path) -> None:
    """The check is real: a PromQL typo and a broken annotation template both fail it."""
    groups = rule_groups()
    groups[0]["rules"][0]["expr"] = "sum(rate(agentcore_reconcile_errors_total[5m]) > 0"
    (tmp_path / "bad-expr.yaml").write_text(yaml.safe_dump({"groups": groups}))
    assert promtool("check", "rules", "bad-expr.yaml", cwd=tmp_path).returncode != 0
    groups = rule_groups()
    groups[0]["rules"][1]["annotations"]["description"] = "{{ $value | nosuchfunc }}"
    (tmp_path / "bad-template.yaml").write_text(yaml.safe_dump({"groups": groups}))
    assert promtool("check", "rules", "bad-template.yaml", cwd=tmp_path).returncode != 0


# --- alerts over synthetic series ---------------------------------------------------------

OP = f'namespace="{NS}",pod="op-a"'
STANDBY = f'namespace="{NS}",pod="op-b"'
API = f'namespace="{NS}",pod="api-a"'
HOOK_FAILED = f'{OP},event="training.job.completed",outcome="failed"'
HOOK_DELIVERED = f'{OP},event="training.job.completed",outcome="delivered"'
BUDGET = f'{OP},phase="Failed",reason="BudgetExceeded"'
SEVERITY = {
    "AgentCoreOperatorNoLeader": "critical",
    "AgentCoreReconcileErrors": "warning",
    "AgentCoreWebhookDeliveryFailures": "warning",
    "AgentCoreTrainingJobsStuckQueued": "warning",
    "AgentCoreTrainingBudgetStops": "info",
    "AgentCoreApiServerErrors": "warning",
    "AgentCoreApiCacheNotSynced": "warning",
}


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


# Sick: each alert's symptom, over 30 one-minute samples.
SICK = [
    series("agentcore_operator_leader", OP, "0x30"),
    series("agentcore_operator_leader", STANDBY, "0x30"),
    series("agentcore_reconcile_errors_total", OP, "0+2x30"),
    series("agentcore_webhook_deliveries_total", HOOK_FAILED, "0 0 0 1 1 1 1 1 1 1"),
    series("agentcore_trainingjobs_finished_total", BUDGET, "0 0 0 1"),
    series("agentcore_api_http_requests_total", f'{API},route="/rpc",status="200"', "0+100x30"),
    series("agentcore_api_http_requests_total", f'{API},route="/rpc",status="500"', "0+10x30"),
    series("agentcore_api_cache_ready", API, "0x30"),
]
# The queue alert needs a leader: it reads the gauge of the pod that leads.
QUEUED = [
    series("agentcore_operator_leader", OP, "1x30"),
    series("agentcore_trainingjob_oldest_queued_seconds", OP, "0+60x30"),
]
# Healthy: a leader, no errors, a standby whose gauge still says a job waits (its last term).
HEALTHY = [
    series("agentcore_operator_leader", OP, "1x30"),
    series("agentcore_operator_leader", STANDBY, "0x30"),
    series("agentcore_trainingjob_oldest_queued_seconds", OP, "0x30"),
    series("agentcore_trainingjob_oldest_queued_seconds", STANDBY, "5000x30"),
    series("agentcore_reconcile_errors_total", OP, "5x30"),
    series("agentcore_webhook_deliveries_total", HOOK_FAILED, "2x30"),
    series("agentcore_webhook_deliveries_total", HOOK_DELIVERED, "0+1x30"),
    series("agentcore_trainingjobs_finished_total", BUDGET, "1x30"),
    series("agentcore_api_http_requests_total", f'{API},route="/rpc",status="200"', "0+100x30"),
    series("agentcore_api_http_requests_total", f'{API},route="/rpc",status="500"', "0+1x30"),
    series("agentcore_api_cache_ready", API, "1x30"),
]


def fired(alert: str, eval_time: str, **labels: str) -> dict[str, Any]:
    expected = {"severity": SEVERITY[alert], "team": "ml-platform", **labels}
    return {"eval_time": eval_time, "alertname": alert, "exp_alerts": [{"exp_labels": expected}]}


def quiet(alert: str, eval_time: str) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": alert, "exp_alerts": []}


def without_annotations(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """promtool compares annotations too; their templates are `check rules`' business."""
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return groups


def run_rule_tests(tmp_path: Path, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": without_annotations(rule_groups())}))
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    return promtool("test", "rules", "tests.yaml", cwd=tmp_path)


def test_each_alert_fires_on_its_symptom_and_none_on_a_healthy_release(tmp_path: Path) -> None:
    assert alert_names(rule_groups()) == set(SEVERITY)
    sick = [
        fired("AgentCoreOperatorNoLeader", "10m"),
        quiet("AgentCoreOperatorNoLeader", "3m"),  # `for: 5m`: not yet
        fired("AgentCoreReconcileErrors", "20m"),
        fired("AgentCoreWebhookDeliveryFailures", "6m", event="training.job.completed"),
        fired("AgentCoreTrainingBudgetStops", "6m"),
        fired("AgentCoreApiServerErrors", "20m"),
        fired("AgentCoreApiCacheNotSynced", "10m"),
    ]
    queued = [
        quiet("AgentCoreTrainingJobsStuckQueued", "14m"),  # 840 s old: under 15 minutes
        fired("AgentCoreTrainingJobsStuckQueued", "25m"),
    ]
    healthy = [quiet(alert, "25m") for alert in SEVERITY]
    tests = [
        {"interval": "1m", "input_series": SICK, "alert_rule_test": sick},
        {"interval": "1m", "input_series": QUEUED, "alert_rule_test": queued},
        {"interval": "1m", "input_series": HEALTHY, "alert_rule_test": healthy},
    ]
    proc = run_rule_tests(tmp_path, tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rule_tests_can_fail(tmp_path: Path) -> None:
    """promtool really evaluates: a healthy release expected to page fails the run."""
    tests = [
        {
            "interval": "1m",
            "input_series": HEALTHY,
            "alert_rule_test": [fired("AgentCoreOperatorNoLeader", "10m")],
        }
    ]
    proc = run_rule_tests(tmp_path, tests)
    assert proc.returncode != 0 and "AgentCoreOperatorNoLeader" in proc.stdout + proc.stderr


def test_thresholds_and_labels_come_from_values() -> None:
    values = json.loads(json.dumps(VALUES))
    values["metrics"]["prometheusRule"].update({"queuedMinutes": 40, "labels": {"release": "kps"}})
    rule = one(render(values, namespace="team-x"), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kps"
    exprs = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert exprs["AgentCoreTrainingJobsStuckQueued"].endswith("> 2400")
    assert all('namespace="team-x"' in e for e in exprs.values())
    assert not [o for o in render(MINIMAL) if o["kind"] == "PrometheusRule"]


# --- the dashboard ----------------------------------------------------------------------------


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_queries_are_promql(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 15
    grafana_vars = {"$__rate_interval": "5m", "$namespace": NS}
    rules = []
    for i, expr in enumerate(exprs):
        for var, value in grafana_vars.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"an unknown dashboard variable in {expr}"
        rules.append({"record": f"agentcore_dashboard:query_{i}", "expr": expr})
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]}))
    proc = promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_covers_what_a_platform_team_watches() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = " ".join(dashboard_exprs(dashboard))
    for metric in (
        "agentcore_trainingjobs{",  # jobs by phase
        "agentcore_reconcile_seconds_bucket",  # reconcile latency
        "agentcore_api_rpc_requests_total",  # RPC rate and errors
        "agentcore_api_rpc_request_duration_seconds_bucket",  # RPC latency
        "agentcore_export_rows_total",  # export throughput
    ):
        assert metric in exprs, metric
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    assert {v["name"] for v in dashboard["templating"]["list"]} == {"datasource", "namespace"}


def test_dashboard_configmap_holds_the_file_for_grafanas_sidecar() -> None:
    values = json.loads(json.dumps(VALUES))
    values["metrics"]["grafanaDashboard"]["namespace"] = "monitoring"
    cm = one(render(values), "ConfigMap", "-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["agentcore-training.json"]) == json.loads(DASHBOARD.read_text())


METRIC = re.compile(r"\bagentcore_[a-z_]+\b")


def referenced_metrics() -> set[str]:
    """Every agentcore_* series the rules and the dashboard query (recording-rule names aside)."""
    text = " ".join(r["expr"] for g in rule_groups() for r in g["rules"])
    text += " " + " ".join(dashboard_exprs(json.loads(DASHBOARD.read_text())))
    return set(METRIC.findall(text))
