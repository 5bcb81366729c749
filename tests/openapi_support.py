"""Responses checked against the Exports API's OpenAPI document (the one the server serves): each
answer's status must be documented for its route and its JSON body must match the schema."""

from __future__ import annotations

import json
import re
from typing import Any

from openapi_schema_validator import OAS31Validator

from agentcore.server.rest.openapi import OPENAPI_PATH, document


def _routes(doc: dict[str, Any]) -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    routes = []
    for template, operations in doc["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method, operation in operations.items():
            routes.append((pattern, method, operation))
    # Literal segments first (…/formats before …/{id}), as the server routes them.
    routes.sort(key=lambda r: r[0].pattern.count("[^/]+"))
    return routes


def check_response(
    method: str, path: str, status: int, body: bytes, doc: dict[str, Any] | None = None
) -> bool:
    """Assert the answer is what the document says; False if the document has no such route."""
    doc = doc or document()
    path = path.split("?", 1)[0]
    if path == OPENAPI_PATH:
        return False
    found = [op for pattern, verb, op in _routes(doc) if verb == method.lower() and pattern.match(path)]
    if not found:
        return False
    responses = found[0]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, not in {sorted(responses)}"
    content = responses[str(status)].get("content")
    if content is None:
        assert not body, f"{method} {path} {status}: a body where the document says none"
        return True
    schema = {**content["application/json"]["schema"], "components": doc["components"]}
    OAS31Validator(schema).validate(json.loads(body))
    return True
