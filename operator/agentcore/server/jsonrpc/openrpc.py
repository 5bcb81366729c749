"""``rpc.discover``: an OpenRPC 1.3 document generated from the same pydantic models that validate
the parameters, so the description cannot drift from the behaviour."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from agentcore.server.jsonrpc.dispatch import CallContext, Method
from agentcore.server.jsonrpc.errors import MESSAGES

OPENRPC_VERSION = "1.3.2"
REF_TEMPLATE = "#/components/schemas/{model}"


def document(
    methods: Iterable[Method], version: str = "1.0", path: str = "/api/v1/jsonrpc"
) -> dict[str, Any]:
    public = [m for m in methods if not m.name.startswith("rpc.")]
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m.params, "validation") for m in public]
    wanted += [(m.result, "serialization") for m in public if m.result is not None]
    _, top = models_json_schema(wanted, by_alias=False, ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = top.get("$defs", {})
    return {
        "openrpc": OPENRPC_VERSION,
        "info": {
            "title": "AgentCore Training API",
            "version": version,
            "description": "GRPO training jobs as Kubernetes TrainingJob resources, over JSON-RPC 2.0.",
        },
        "servers": [{"name": "default", "url": path}],
        "methods": [_method(m, schemas) for m in public],
        "components": {
            "schemas": schemas,
            "errors": {str(code): {"code": code, "message": message} for code, message in MESSAGES.items()},
        },
    }


class DiscoverParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


def discover_method(methods: Iterable[Method], version: str = "1.0") -> Method:
    """``rpc.discover``; the document is built once, on first use."""
    listed = list(methods)
    cache: dict[str, Any] = {}

    async def discover(ctx: CallContext, params: DiscoverParams) -> dict[str, Any]:
        if not cache:
            cache.update(document(listed, version))
        return cache

    return Method("rpc.discover", DiscoverParams, discover, "This document (OpenRPC).")


def _method(method: Method, schemas: dict[str, Any]) -> dict[str, Any]:
    params_schema = schemas.get(method.params.__name__, {})
    required = set(params_schema.get("required", []))
    entry: dict[str, Any] = {
        "name": method.name,
        "summary": method.summary or (method.params.__doc__ or "").strip(),
        "paramStructure": "by-name",
        "params": [
            {
                "name": name,
                "required": name in required,
                "description": schema.get("description", ""),
                "schema": schema,
            }
            for name, schema in params_schema.get("properties", {}).items()
        ],
        "errors": [{"code": code, "message": MESSAGES[code]} for code in method.errors],
    }
    if method.result is not None:
        entry["result"] = {
            "name": "result",
            "schema": {"$ref": REF_TEMPLATE.format(model=method.result.__name__)},
        }
    if method.permission:
        entry["x-permission"] = method.permission
    return entry
