"""Redaction rules: the spec's RedactionRule, two built-in rules, and custom rules from ConfigMaps.

A custom rule is a ConfigMap in the tenant's namespace labelled
``training.agentcore.io/redaction-rule: "true"`` whose ``rule.yaml`` (or ``rule.json``) key holds a
RedactionRule; its id is the ConfigMap's name (so ``kubectl``/GitOps manage it like any manifest)::

    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: strict-timing
      labels: {training.agentcore.io/redaction-rule: "true"}
    data:
      rule.yaml: |
        name: Strict timing
        description: Hash agents, bucket execution times
        fields:
          - {path: agent.id, action: hash}
          - {path: trajectory.execution_time_ms, action: bucket,
             buckets: [[0, 999], [1000, 9999], [10000, null]]}

Built-in ids win over ConfigMaps of the same name.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agentcore.api import labels
from agentcore.api.exports import DEFAULT_REDACTION_RULE, PrivacyLevel

RULE_LABEL = labels.REDACTION_RULE
RULE_KEYS = ("rule.yaml", "rule.json")
MAX_BUCKETS = 100
MAX_PREFIX = 16


class RuleError(ValueError):
    """A rule that is malformed, unknown, inactive or not allowed at the requested level."""


class Action(StrEnum):
    HASH = "hash"
    REPLACE = "replace"
    REDACT = "redact"
    BUCKET = "bucket"


Bound = float | None


class FieldRule(BaseModel):
    """How one field path is treated. Paths may use ``*`` wildcards (``trajectory.*``)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_*]+(\.[A-Za-z0-9_*]+)*$")
    action: Action
    # Only keyed hashing exists: "sha256" is accepted for the spec's examples and means HMAC-SHA256
    # with the tenant's key (a bare sha256 of a guessable id is reversible by dictionary).
    algorithm: str = Field(default="hmac-sha256", pattern=r"^(hmac-sha256|sha256)$")
    preserve_prefix: int | None = Field(default=None, ge=1, le=MAX_PREFIX)
    value: str | None = Field(default=None, max_length=256)
    replacement: str | None = Field(default=None, max_length=256)
    buckets: list[tuple[float, Bound]] | None = Field(default=None, min_length=1, max_length=MAX_BUCKETS)

    @model_validator(mode="after")
    def _options_fit_action(self) -> FieldRule:
        if self.action == Action.REPLACE and self.value is None:
            raise ValueError(f"{self.path}: action 'replace' needs 'value'")
        if self.action == Action.BUCKET:
            validate_buckets(self.path, self.buckets)
        elif self.buckets is not None:
            raise ValueError(f"{self.path}: 'buckets' only applies to action 'bucket'")
        if self.preserve_prefix is not None and self.action != Action.HASH:
            raise ValueError(f"{self.path}: 'preserve_prefix' only applies to action 'hash'")
        return self


def validate_buckets(path: str, buckets: list[tuple[float, Bound]] | None) -> None:
    """Each [low, high] is inclusive with low <= high; sorted, non-overlapping; only the last may
    be open-ended (high null)."""
    if not buckets:
        raise ValueError(f"{path}: action 'bucket' needs a non-empty 'buckets' list")
    previous_high: float | None = None
    for i, (low, high) in enumerate(buckets):
        last = i == len(buckets) - 1
        if high is None and not last:
            raise ValueError(f"{path}: only the last bucket may be open-ended (null upper bound)")
        if high is not None and low > high:
            raise ValueError(f"{path}: bucket [{low}, {high}] has its lower bound above its upper bound")
        if previous_high is not None and low <= previous_high:
            raise ValueError(
                f"{path}: bucket [{low}, {high}] overlaps or precedes the previous one (buckets must be "
                "sorted and must not overlap)"
            )
        previous_high = high


class RedactionRule(BaseModel):
    """The spec's RedactionRule."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=253)
    name: str = Field(min_length=1, max_length=256)
    description: str = Field(default="", max_length=2048)
    fields: list[FieldRule] = Field(min_length=1, max_length=256)
    is_active: bool = True
    created_at: dt.datetime | None = None

    def check_level(self, level: PrivacyLevel) -> None:
        """Refuse what the level cannot allow: a preserved prefix is part of the original value."""
        if not self.is_active:
            raise RuleError(f"redaction rule {self.id!r} is not active")
        if level == PrivacyLevel.FULL:
            return
        leaky = [f.path for f in self.fields if f.preserve_prefix]
        if leaky:
            raise RuleError(
                f"redaction rule {self.id!r} keeps a prefix of the original value for "
                f"{', '.join(leaky)} (preserve_prefix): not allowed at the {level.value} level"
            )

    def summary(self, default_id: str = DEFAULT_REDACTION_RULE) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "is_default": self.id == default_id,
            "fields_affected": len(self.fields),
        }

    def detail(self) -> dict[str, Any]:
        out = self.model_dump(mode="json", exclude_none=True, exclude={"fields"})
        out["fields"] = [_field_detail(f) for f in self.fields]
        return out


def _field_detail(rule: FieldRule) -> dict[str, Any]:
    out = rule.model_dump(mode="json", exclude_none=True)
    if rule.action != Action.HASH:
        out.pop("algorithm", None)  # meaningless for the other actions
    return out


_BUILTIN_CREATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_REDACT = Action.REDACT

PII_STANDARD = RedactionRule(
    id="pii-standard",
    name="Standard PII Redaction",
    description="Hash personal identifiers (agents, users), remove free text, IP addresses and "
    "error messages",
    fields=[
        FieldRule(path="agent.id", action=Action.HASH),
        FieldRule(path="actor.id", action=Action.HASH),
        FieldRule(path="actor.ip", action=_REDACT, replacement="[IP REDACTED]"),
        FieldRule(path="trajectory.query", action=_REDACT),
        FieldRule(path="trajectory.steps", action=_REDACT),
        FieldRule(path="trajectory.error", action=_REDACT, replacement="[ERROR REDACTED]"),
        FieldRule(path="job.message", action=_REDACT, replacement="[MESSAGE REDACTED]"),
        FieldRule(path="audit.details", action=_REDACT),
    ],
    created_at=_BUILTIN_CREATED,
)

FULL_ANONYMIZATION = RedactionRule(
    id="full-anonymization",
    name="Full Anonymization",
    description="Remove all identifying information: hash every identifier (agents, users, jobs, "
    "checkpoints, trajectories), remove free text, bucket execution times",
    fields=[
        *PII_STANDARD.fields,
        FieldRule(path="job.id", action=Action.HASH),
        FieldRule(path="job.name", action=Action.HASH),
        FieldRule(path="node.id", action=Action.HASH),
        FieldRule(path="checkpoint.id", action=Action.HASH),
        FieldRule(path="trajectory.id", action=Action.HASH),
        FieldRule(path="resource.name", action=Action.HASH),
        FieldRule(path="request.id", action=_REDACT),
        FieldRule(
            path="trajectory.execution_time_ms",
            action=Action.BUCKET,
            buckets=[(0, 999), (1000, 4999), (5000, 29999), (30000, None)],
        ),
    ],
    created_at=_BUILTIN_CREATED,
)

BUILTIN_RULES: dict[str, RedactionRule] = {r.id: r for r in (PII_STANDARD, FULL_ANONYMIZATION)}


def is_rule_configmap(cm: Mapping[str, Any]) -> bool:
    labels = (cm.get("metadata") or {}).get("labels") or {}
    return str(labels.get(RULE_LABEL, "")).lower() == "true"


def rule_from_configmap(cm: Mapping[str, Any]) -> RedactionRule:
    """Parse a labelled ConfigMap; RuleError says what is wrong (shown in the ExportJob status)."""
    meta = cm.get("metadata") or {}
    name = meta.get("name", "?")
    if not is_rule_configmap(cm):
        raise RuleError(f"ConfigMap {name!r} is not a redaction rule (label {RULE_LABEL}=true missing)")
    data = cm.get("data") or {}
    key = next((k for k in RULE_KEYS if k in data), None)
    if key is None:
        raise RuleError(f"ConfigMap {name!r} has no {' or '.join(RULE_KEYS)} key")
    try:
        raw = json.loads(data[key]) if key.endswith(".json") else yaml.safe_load(data[key])
    except (ValueError, yaml.YAMLError) as exc:
        raise RuleError(f"ConfigMap {name!r}: {key} does not parse: {exc}") from exc
    if not isinstance(raw, dict):
        raise RuleError(f"ConfigMap {name!r}: {key} must hold a mapping")
    raw = {**raw, "id": name}
    raw.setdefault("name", name)
    if meta.get("creationTimestamp") and "created_at" not in raw:
        raw["created_at"] = meta["creationTimestamp"]
    try:
        return RedactionRule.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RuleError(f"redaction rule {name!r} is invalid: {problems}") from exc
