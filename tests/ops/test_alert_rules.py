"""docs/alerts.rules.yml and docs/grafana/billing-overview.json: well-formed (promtool is not on PyPI, so
a parser and a small PromQL check stand in), and every metric they name is exported by some service, so a
renamed metric or a typo fails here instead of leaving an alert that can never fire."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from billing_runtime.metrics import Metrics
from gateway.metrics import GatewayMetrics
from payments_svc.metrics import PaymentMetrics
from prometheus_client import CollectorRegistry
from providers_svc.metrics import ProvidersMetrics
from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.run_metrics import RunMetrics
from webhook_dispatcher.metrics import WebhookMetrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
RULES = DOCS / "alerts.rules.yml"
DASHBOARD = DOCS / "grafana" / "billing-overview.json"

_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_FUNCTIONS = frozenset(
    [
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "count_values",
        "topk",
        "bottomk",
        "quantile",
        "stddev",
        "stdvar",
        "group",
        "histogram_quantile",
        "abs",
        "absent",
        "absent_over_time",
        "clamp",
        "clamp_min",
        "clamp_max",
        "ceil",
        "floor",
        "round",
        "time",
        "vector",
        "scalar",
        "label_replace",
        "label_join",
        "sort",
        "sort_desc",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "changes",
        "resets",
        "deriv",
        "predict_linear",
        "timestamp",
    ]
)
_KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "inf",
        "nan",
    ]
)
# What an expression may be, once its strings, label matchers, ranges and grouping clauses are gone.
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def exported_metric_names() -> set[str]:
    """Every series name the services export, from their own metrics classes."""
    base = Metrics("all")
    registries: list[CollectorRegistry] = [base.registry, GatewayMetrics().registry, ProvidersMetrics().registry]
    PaymentMetrics(base)
    WebhookMetrics(base)
    ReconciliationMetrics(base)
    RunMetrics(base)
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
            else:
                names.add(family.name)
    return names


def check_promql(expr: str) -> set[str]:
    """Raise on an expression that is not plausibly PromQL; return the metric names it selects."""
    assert expr.strip(), "empty expression"
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for ch in re.sub(r'"[^"]*"', '""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in ")]}":
            assert stack and stack.pop() == pairs[ch], f"unbalanced {ch!r} in {expr!r}"
    assert not stack, f"unclosed {stack} in {expr!r}"
    assert expr.count('"') % 2 == 0, f"unterminated string in {expr!r}"
    for window in re.findall(r"\[([^\]]*)\]", expr):
        assert _DURATION.fullmatch(window), f"bad range [{window}] in {expr!r}"
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        for matcher in filter(None, (m.strip() for m in matchers.split(","))):
            assert re.fullmatch(r'[A-Za-z_]\w*\s*(=~|!~|!=|=)\s*"[^"]*"', matcher), f"bad matcher {matcher!r}"
    stripped = re.sub(r'"[^"]*"', " ", expr)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", stripped)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    names: set[str] = set()
    for match in _IDENT.finditer(stripped):
        word = match.group()
        following = stripped[match.end() :].lstrip()[:1]
        if word in _KEYWORDS or _DURATION.fullmatch(word):
            continue
        if following == "(":
            assert word in _FUNCTIONS, f"unknown function {word}() in {expr!r}"
            continue
        names.add(word)
    return names


def _rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    rules: list[dict] = []
    for group in document["groups"]:
        assert group["name"] and group["rules"]
        rules.extend(group["rules"])
    return rules


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    # Grafana's own variables are not PromQL: a job filter is a label matcher like any other.
    return [e.replace("$job", ".*") for e in exprs]


class TestAlertRules:
    def test_every_rule_is_complete(self) -> None:
        names = [rule["alert"] for rule in _rules()]
        assert len(names) == len(set(names)), "alert names must be unique"
        for rule in _rules():
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
            assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"])
            assert _DURATION.fullmatch(rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in ("page", "warn"), rule["alert"]
            assert rule["annotations"]["summary"].strip(), rule["alert"]

    def test_the_issue_asks_for_these_alerts(self) -> None:
        names = {rule["alert"] for rule in _rules()}
        assert {
            "WebhookFailureRate",
            "PaymentSuccessRateDrop",
            "OutboxBacklogAging",
            "DeadLetters",
            "JanitorHeals",
        } <= names

    def test_expressions_parse_and_name_exported_metrics_only(self) -> None:
        exported = exported_metric_names()
        for rule in _rules():
            unknown = check_promql(rule["expr"]) - exported
            assert not unknown, f"{rule['alert']} names metrics no service exports: {sorted(unknown)}"


class TestDashboard:
    def test_it_is_a_dashboard_whose_panels_name_exported_metrics_only(self) -> None:
        dashboard = json.loads(DASHBOARD.read_text())
        assert dashboard["uid"] and dashboard["title"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        exported = exported_metric_names()
        used: set[str] = set()
        for expr in _dashboard_exprs():
            names = check_promql(expr)
            assert not names - exported, f"{expr!r} names metrics no service exports: {sorted(names - exported)}"
            used |= names
        # The integration guide's metrics are all on it.
        assert {
            "billing_payments_success_total",
            "billing_payments_failure_total",
            "billing_payment_processing_duration_seconds_bucket",
            "billing_webhook_processing_duration_seconds_bucket",
            "http_requests_total",
            "outbox_oldest_age_seconds",
            "bus_event_lag_seconds_bucket",
            "dead_letters",
            "webhook_deliveries_total",
        } <= used


class TestTheChecker:
    """The checks above only mean something if they catch mistakes."""

    @pytest.mark.parametrize(
        "expr",
        [
            "sum(rate(x_total[5m])",
            "rate(x_total[5 minutes])",
            'x_total{outcome="a}',
            "x_total{outcome=a}",
            "summ(x_total)",
        ],
    )
    def test_malformed_expressions_are_refused(self, expr: str) -> None:
        with pytest.raises(AssertionError):
            check_promql(expr)

    def test_a_misspelt_metric_is_found(self) -> None:
        names = check_promql('sum by (queue) (rate(dead_leters{queue=~"a.*"}[5m])) > 0 and on (job) up_metric')
        assert names == {"dead_leters", "up_metric"}
        assert "dead_leters" not in exported_metric_names()
        assert "dead_letters" in exported_metric_names()
