"""The ValidatingAdmissionPolicy that guards ExportJobs created with kubectl (or any client).

The API server checks the caller's token before it creates a `full` export and stamps the
`created-by` annotation with the token's subject; an ExportJob created straight on the apiserver
passed neither check. This policy makes the apiserver ask RBAC instead, with two verbs that only
exist for it (RBAC accepts any verb name), so a platform team grants them like any other right:

- `export-full` on `exportjobs.training.agentcore.io`: create an ExportJob at privacy level `full`
  (or raise an existing one to it);
- `set-creator` on the same: set `created-by` to anyone but oneself (the API server's account,
  which creates exports on behalf of its callers).

Updates that change neither the level nor the annotation are never refused, so the operator's and
kopf's metadata patches on an admin's `full` export go through. One source for `agentcore dev`
(applied as is) and the chart (templates/admission-policy.yaml; a chart test compares them).
"""

from __future__ import annotations

from typing import Any

from agentcore.api.common import GROUP, VERSION
from agentcore.api.labels import CREATED_BY

POLICY_NAME = "exportjobs.training.agentcore.io"
VERB_EXPORT_FULL = "export-full"
VERB_SET_CREATOR = "set-creator"

Obj = dict[str, Any]

_AUTHZ = f"authorizer.group('{GROUP}').resource('exportjobs').namespace(object.metadata.namespace)"


def _annotation(obj: str) -> str:
    return (
        f"has({obj}.metadata.annotations) && '{CREATED_BY}' in {obj}.metadata.annotations"
        f" ? {obj}.metadata.annotations['{CREATED_BY}'] : ''"
    )


def _level(obj: str) -> str:
    return (
        f"(has({obj}.spec.config) && has({obj}.spec.config.privacyLevel)"
        f" ? {obj}.spec.config.privacyLevel : '')"
    )


def exportjob_policy() -> Obj:
    variables = [
        {
            "name": "newlyFull",
            "expression": f"{_level('object')} == 'full'"
            f" && (request.operation == 'CREATE' || {_level('oldObject')} != 'full')",
        },
        {"name": "creator", "expression": _annotation("object")},
        {
            "name": "previousCreator",
            "expression": f"request.operation == 'UPDATE' ? ({_annotation('oldObject')}) : ''",
        },
    ]
    validations = [
        {
            "expression": f"!variables.newlyFull || {_AUTHZ}.check('{VERB_EXPORT_FULL}').allowed()",
            "messageExpression": "'spec.config.privacyLevel: a full export needs the verb "
            f"{VERB_EXPORT_FULL} on exportjobs.{GROUP} in namespace ' + object.metadata.namespace"
            " + ' (ask for an admin export through the API server, or for that RBAC grant)'",
            "reason": "Forbidden",
        },
        {
            "expression": "variables.creator == '' || variables.creator == variables.previousCreator"
            " || variables.creator == request.userInfo.username"
            f" || {_AUTHZ}.check('{VERB_SET_CREATOR}').allowed()",
            "messageExpression": f"'metadata.annotations[{CREATED_BY}]: may only name the creator ('"
            " + request.userInfo.username + '), unless the verb"
            f" {VERB_SET_CREATOR} on exportjobs.{GROUP} is granted'",
            "reason": "Forbidden",
        },
    ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": [VERSION],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["exportjobs"],
                    }
                ]
            },
            "variables": variables,
            "validations": validations,
        },
    }


def exportjob_policy_binding() -> Obj:
    """Binds the policy everywhere (ExportJobs exist only in tenant namespaces), refusing."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }
