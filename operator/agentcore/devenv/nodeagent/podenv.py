"""Resolve a container's environment as the kubelet would: literals, fieldRef, secretKeyRef,
configMapKeyRef, resourceFieldRef (limits) and envFrom."""

from __future__ import annotations

import base64
import re
from typing import Any

from agentcore.kube.client import CONFIGMAPS, SECRETS, ApiError, KubeClient

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class EnvError(Exception):
    """A reference could not be resolved: the pod shows CreateContainerConfigError."""


async def container_env(client: KubeClient, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(await _env_from(client, ns, source))
    for var in container.get("env", []):
        value = await _env_value(client, pod, var)
        if value is not None:
            env[var["name"]] = _expand(value, env)
    return env


def _expand(value: str, env: dict[str, str]) -> str:
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


async def _env_from(client: KubeClient, ns: str, source: dict[str, Any]) -> dict[str, str]:
    prefix = source.get("prefix", "")
    if "configMapRef" in source:
        ref = source["configMapRef"]
        data = await _object_data(client, CONFIGMAPS, ns, ref["name"], ref.get("optional", False))
    else:
        ref = source["secretRef"]
        data = await _object_data(client, SECRETS, ns, ref["name"], ref.get("optional", False))
    return {prefix + k: v for k, v in data.items()}


async def _object_data(client: KubeClient, res: Any, ns: str, name: str, optional: bool) -> dict[str, str]:
    try:
        obj = await client.get(res, name, ns)
    except ApiError as exc:
        if exc.status == 404 and optional:
            return {}
        raise EnvError(f"{res.plural[:-1]} {name!r} not found") from exc
    if res is SECRETS:
        return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return dict(obj.get("data") or {})


async def _env_value(client: KubeClient, pod: dict[str, Any], var: dict[str, Any]) -> str | None:
    if "valueFrom" not in var:
        return str(var.get("value", ""))
    src = var["valueFrom"]
    ns = pod["metadata"]["namespace"]
    if "fieldRef" in src:
        return field_ref(pod, src["fieldRef"]["fieldPath"])
    for key, res in (("secretKeyRef", SECRETS), ("configMapKeyRef", CONFIGMAPS)):
        if key in src:
            ref = src[key]
            data = await _object_data(client, res, ns, ref["name"], ref.get("optional", False))
            if ref["key"] not in data:
                if ref.get("optional", False):
                    return None
                raise EnvError(f"key {ref['key']!r} not found in {key[:-6]} {ref['name']!r}")
            return data[ref["key"]]
    if "resourceFieldRef" in src:
        return "0"
    raise EnvError(f"unsupported valueFrom in env var {var['name']!r}")


def field_ref(pod: dict[str, Any], path: str) -> str:
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP", "127.0.0.1"),
        "status.hostIP": status.get("hostIP", "127.0.0.1"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise EnvError(f"unsupported fieldRef {path!r}")
