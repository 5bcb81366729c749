"""Redaction rules (validation, built-ins, ConfigMaps) and their application to rows."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import yaml
from pydantic import ValidationError

from agentcore.api.exports import PrivacyLevel
from agentcore.exports.redaction import OTHER_BUCKET, Pseudonymizer, bucketer, plan_redaction
from agentcore.exports.rules import (
    BUILTIN_RULES,
    FULL_ANONYMIZATION,
    PII_STANDARD,
    RULE_LABEL,
    FieldRule,
    RedactionRule,
    RuleError,
    rule_from_configmap,
)
from agentcore.exports.schema import Column, Kind

KEY = b"k" * 32
AGE = [(18, 25), (26, 35), (36, 50), (51, 100)]
INCOME = [(0, 50000), (50001, 100000), (100001, 200000), (200001, None)]


@pytest.mark.parametrize(
    "buckets, problem",
    [
        ([(18, 25), (25, 30)], "overlap"),
        ([(26, 35), (18, 25)], "overlap"),
        ([(0, None), (10, 20)], "only the last bucket may be open-ended"),
        ([(30, 20)], "lower bound above its upper bound"),
        ([], "at least 1"),
    ],
)
def test_invalid_buckets_are_refused(buckets, problem):
    with pytest.raises(ValidationError, match=problem):
        FieldRule(path="persona.demographics.age", action="bucket", buckets=buckets)


def test_bucket_needs_buckets_and_replace_needs_value():
    with pytest.raises(ValidationError, match="needs a non-empty 'buckets'"):
        FieldRule(path="a.b", action="bucket")
    with pytest.raises(ValidationError, match="needs 'value'"):
        FieldRule(path="a.b", action="replace")
    with pytest.raises(ValidationError, match="only applies to action 'hash'"):
        FieldRule(path="a.b", action="redact", preserve_prefix=3)


def test_bucket_labels_bounds_open_end_and_other():
    age, income = bucketer(AGE), bucketer(INCOME)
    assert [age(v) for v in (18, 25, 25.5, 26, 100, 17, 101)] == [
        "18-25",
        "18-25",
        OTHER_BUCKET,  # falls between two inclusive buckets
        "26-35",
        "51-100",
        OTHER_BUCKET,
        OTHER_BUCKET,
    ]
    assert income(10**9) == "200001+"
    assert age("forty") == OTHER_BUCKET and age(True) == OTHER_BUCKET
    assert age(None) is None
    assert bucketer([(0.5, 1.5)])(1) == "0.5-1.5"


def test_pseudonyms_are_keyed_hmac_sha256_with_128_bits():
    hasher = Pseudonymizer(KEY)
    expected = hmac.new(KEY, b"agent-7", hashlib.sha256).hexdigest()[:32]
    assert hasher("agent-7") == expected and len(expected) * 4 == 128
    assert hasher("agent-7") == Pseudonymizer(KEY)("agent-7")  # stable for one key
    assert hasher("agent-7") != Pseudonymizer(b"x" * 32)("agent-7")  # differs across keys
    assert hasher("agent-7") != hashlib.sha256(b"agent-7").hexdigest()[:32]  # not an unkeyed hash
    assert hasher(None) is None
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymizer(b"short")


def test_preserve_prefix_refused_below_full():
    rule = RedactionRule(
        id="leaky",
        name="Leaky",
        fields=[FieldRule(path="persona.name", action="hash", preserve_prefix=3)],
    )
    rule.check_level(PrivacyLevel.FULL)
    for level in (PrivacyLevel.ANONYMIZED, PrivacyLevel.AGGREGATED, PrivacyLevel.SUMMARY):
        with pytest.raises(RuleError, match="preserve_prefix"):
            rule.check_level(level)
    cols = (Column("name", Kind.STRING, "persona.name"),)
    with pytest.raises(RuleError):
        plan_redaction(cols, PrivacyLevel.ANONYMIZED, rule, KEY)


def test_inactive_rule_refused():
    rule = RedactionRule(id="off", name="Off", fields=[FieldRule(path="a", action="redact")], is_active=False)
    with pytest.raises(RuleError, match="not active"):
        rule.check_level(PrivacyLevel.ANONYMIZED)


def test_builtins():
    assert set(BUILTIN_RULES) == {"pii-standard", "full-anonymization"}
    assert all(f.preserve_prefix is None for r in BUILTIN_RULES.values() for f in r.fields)
    assert PII_STANDARD.summary()["is_default"] and not FULL_ANONYMIZATION.summary()["is_default"]
    assert len(FULL_ANONYMIZATION.fields) > len(PII_STANDARD.fields)
    detail = PII_STANDARD.detail()
    assert detail["id"] == "pii-standard" and detail["is_active"] is True
    assert {"path": "agent.id", "action": "hash", "algorithm": "hmac-sha256"} in detail["fields"]


def _configmap(data: dict, labelled: bool = True) -> dict:
    labels = {RULE_LABEL: "true"} if labelled else {}
    return {
        "metadata": {
            "name": "strict",
            "namespace": "t",
            "labels": labels,
            "creationTimestamp": "2026-01-02T00:00:00Z",
        },
        "data": data,
    }


def test_rule_from_configmap_yaml_and_json():
    rule = {"name": "Strict", "fields": [{"path": "agent.id", "action": "replace", "value": "X"}]}
    for data in ({"rule.yaml": yaml.safe_dump(rule)}, {"rule.json": json.dumps(rule)}):
        parsed = rule_from_configmap(_configmap(data))
        assert parsed.id == "strict" and parsed.name == "Strict"
        assert parsed.created_at is not None


@pytest.mark.parametrize(
    "cm, problem",
    [
        (_configmap({"rule.yaml": "name: x\nfields: []"}, labelled=False), "label"),
        (_configmap({"other": "x"}), "no rule.yaml"),
        (_configmap({"rule.yaml": "[1, 2"}), "does not parse"),
        (_configmap({"rule.yaml": "- a"}), "mapping"),
        (
            _configmap(
                {
                    "rule.yaml": yaml.safe_dump(
                        {"fields": [{"path": "a", "action": "bucket", "buckets": [[5, 1]]}]}
                    )
                }
            ),
            "invalid",
        ),
    ],
)
def test_bad_configmaps(cm, problem):
    with pytest.raises(RuleError, match=problem):
        rule_from_configmap(cm)


COLUMNS = (
    Column("trajectory_id", Kind.STRING, "trajectory.id"),
    Column("agent_id", Kind.STRING, "agent.id", pii=True),
    Column("query", Kind.STRING, "trajectory.query", free_text=True),
    Column("reward", Kind.FLOAT, "trajectory.reward"),
    Column("execution_time_ms", Kind.INT, "trajectory.execution_time_ms"),
    Column("error", Kind.STRING, "trajectory.error", free_text=True),
)
ROW = ("t-1", "alice@example.com", "my phone is 555-0100", 0.5, 1200, "boom for alice")


def test_full_passes_rows_unchanged():
    plan = plan_redaction(COLUMNS, PrivacyLevel.FULL, None, None)
    assert plan.columns == COLUMNS and plan.apply([ROW]) == [ROW] and plan.fields_redacted == ()


def test_pii_standard_hashes_ids_and_removes_free_text():
    plan = plan_redaction(COLUMNS, PrivacyLevel.ANONYMIZED, PII_STANDARD, KEY)
    names = [c.name for c in plan.columns]
    assert names == ["trajectory_id", "agent_id", "reward", "execution_time_ms", "error"]
    (row,) = plan.apply([ROW])
    assert row[1] == Pseudonymizer(KEY)("alice@example.com")
    assert row[4] == "[ERROR REDACTED]"
    assert "alice" not in repr(row) and "555" not in repr(row)
    assert set(plan.fields_redacted) == {"agent.id", "trajectory.query", "trajectory.error"}


def test_full_anonymization_buckets_and_hashes_more():
    plan = plan_redaction(COLUMNS, PrivacyLevel.ANONYMIZED, FULL_ANONYMIZATION, KEY)
    (row,) = plan.apply([ROW])
    assert row[0] == Pseudonymizer(KEY)("t-1")
    assert row[3] == "1000-4999"
    assert next(c for c in plan.columns if c.name == "execution_time_ms").kind == Kind.STRING


def test_custom_rule_cannot_leave_pii_or_free_text_raw():
    # A rule that only buckets the reward: the agent id is still hashed, free text still dropped,
    # and a bucket action on free text (meaningless) drops it too.
    rule = RedactionRule(
        id="lax",
        name="Lax",
        fields=[
            FieldRule(path="trajectory.reward", action="bucket", buckets=[(0, 0.49), (0.5, 1)]),
            FieldRule(path="trajectory.query", action="bucket", buckets=[(0, 1)]),
        ],
    )
    plan = plan_redaction(COLUMNS, PrivacyLevel.ANONYMIZED, rule, KEY)
    (row,) = plan.apply([ROW])
    assert [c.name for c in plan.columns] == ["trajectory_id", "agent_id", "reward", "execution_time_ms"]
    assert list(row) == ["t-1", Pseudonymizer(KEY)("alice@example.com"), "0.5-1", 1200]


def test_rule_may_keep_free_text_as_a_constant_and_wildcards_match():
    rule = RedactionRule(
        id="const",
        name="Const",
        fields=[
            FieldRule(path="trajectory.q*", action="replace", value="[Q]"),
            FieldRule(path="agent.*", action="redact"),
        ],
    )
    plan = plan_redaction(COLUMNS, PrivacyLevel.ANONYMIZED, rule, KEY)
    (row,) = plan.apply([ROW])
    assert [c.name for c in plan.columns] == ["trajectory_id", "query", "reward", "execution_time_ms"]
    assert row[1] == "[Q]"


def test_aggregated_suppresses_small_groups():
    cols = (
        Column("agent_id", Kind.STRING, "agent.id", pii=True),
        Column("trajectories", Kind.INT, "telemetry.trajectories", group_size=True),
    )
    plan = plan_redaction(cols, PrivacyLevel.AGGREGATED, PII_STANDARD, KEY, k=5)
    out = plan.apply([("a", 4), ("b", 5), ("c", 50), ("d", None)])
    assert [r[1] for r in out] == [5, 50]
    assert plan.rows_filtered == 2


@pytest.mark.parametrize(
    "level, rule", [(PrivacyLevel.FULL, None), (PrivacyLevel.ANONYMIZED, FULL_ANONYMIZATION)]
)
def test_selected_columns_are_those_of_the_applied_rows(level, rule):
    rows = [(f"t-{i}", f"a{i % 3}", f"q {i}", i / 10, 900 * i, None) for i in range(12)]
    plan = plan_redaction(COLUMNS, level, rule, KEY)
    applied = list(zip(*plan.apply(rows), strict=True))
    for wanted in (range(0, len(plan.columns), 2), [1], range(len(plan.columns))):  # transposed or mapped
        selected = plan.select(rows, wanted)
        assert selected.rows == len(rows) and list(selected.columns) == list(wanted)
        assert all(list(selected.columns[i]) == list(applied[i]) for i in wanted)
    assert plan.select([], [0, 1]) == (0, {0: [], 1: []})


def test_selecting_from_an_aggregated_batch_drops_the_small_groups_first():
    cols = (
        Column("agent_id", Kind.STRING, "agent.id", pii=True),
        Column("trajectories", Kind.INT, "telemetry.trajectories", group_size=True),
    )
    plan = plan_redaction(cols, PrivacyLevel.AGGREGATED, PII_STANDARD, KEY, k=5)
    selected = plan.select([("a", 4), ("b", 5), ("c", 50)], [1])
    assert selected.rows == 2 and list(selected.columns[1]) == [5, 50] and plan.rows_filtered == 1


def test_non_full_levels_need_the_key():
    with pytest.raises(ValueError, match="key"):
        plan_redaction(COLUMNS, PrivacyLevel.ANONYMIZED, PII_STANDARD, None)


def test_the_example_rule_configmap_parses_and_applies():
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "redaction-rule.yaml"
    rule = rule_from_configmap(yaml.safe_load(path.read_text()))
    assert rule.id == "strict-timing" and len(rule.fields) == 7
    plan = plan_redaction(COLUMNS, PrivacyLevel.ANONYMIZED, rule, KEY)
    (row,) = plan.apply([ROW])
    assert list(row) == ["t-1", Pseudonymizer(KEY)("alice@example.com"), "0.5-0.749", "1000-9999", "[ERROR]"]


def test_no_identifier_derived_from_an_agent_id_survives_below_full():
    """Red team (issue 12): job names (built from agent ids), node ids and audited resource names
    left anonymized/aggregated exports verbatim under the default rule."""
    from agentcore.exports.sources.audit_log import AUDIT_COLUMNS
    from agentcore.exports.sources.node_comparison import NODE_COLUMNS
    from agentcore.exports.sources.persona_catalog import PERSONA_COLUMNS
    from agentcore.exports.sources.telemetry_dump import TELEMETRY_COLUMNS
    from agentcore.exports.sources.trajectories import TRAJECTORY_COLUMNS

    derived = "code-generator-v2-1a2b3c4d"  # training.start_grpo's name for agent code-generator-v2
    # Where such names appear: the agent id itself, job names, node ids (job names or
    # "<job>/<checkpoint>"), and audited resource names (TrainingJobs, ExportJobs).
    carriers = {"agent.id", "job.name", "node.id", "resource.name"}
    for columns in (AUDIT_COLUMNS, NODE_COLUMNS, PERSONA_COLUMNS, TELEMETRY_COLUMNS, TRAJECTORY_COLUMNS):
        assert carriers & {c.path for c in columns}
        row = tuple(derived if c.path in carriers else None for c in columns)
        for level in (PrivacyLevel.ANONYMIZED, PrivacyLevel.AGGREGATED):
            plan = plan_redaction(columns, level, PII_STANDARD, KEY, k=1)
            plan._size_index = None  # this test is about columns, not group sizes
            assert "code-generator" not in repr(plan.apply([row])), [c.name for c in columns]
