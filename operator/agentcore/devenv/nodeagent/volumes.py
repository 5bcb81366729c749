"""Projected service-account token volumes, as far as a process-based node can provide them.

For every ``projected`` volume source ``serviceAccountToken {audience, expirationSeconds, path}`` the
node agent asks the apiserver for a token (TokenRequest with those audiences and that lifetime,
bound to the pod, as the kubelet does) and writes it to ``<pod dir>/volumes/<volume>/<path>``; it
writes a fresh one when 80% of the lifetime has passed, for as long as the pod runs.

The agent cannot mount, so it rewrites paths instead (the documented rule): in a container's
environment, a value that starts with the ``mountPath`` of one of its ``volumeMounts`` naming such a
volume has that prefix replaced by the volume's directory under the pod's dir. A trainer given
``AGENTCORE_INGEST_TOKEN_FILE=/var/run/secrets/agentcore.io/ingest/token`` reads the same token a
kubelet would have mounted there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcore.kube.client import SERVICEACCOUNTS, KubeClient

log = logging.getLogger("agentcore.nodeagent")
DEFAULT_SECONDS = 3600  # the kubelet's default expirationSeconds
REFRESH_AT = 0.8


@dataclass(frozen=True)
class TokenSource:
    volume: str
    path: str
    audience: str | None
    seconds: int


def token_sources(pod: dict[str, Any]) -> list[TokenSource]:
    found = []
    for volume in pod["spec"].get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token is not None:
                seconds = int(token.get("expirationSeconds") or DEFAULT_SECONDS)
                found.append(TokenSource(volume["name"], token["path"], token.get("audience"), seconds))
    return found


def volume_dir(pod_dir: Path, volume: str) -> Path:
    return pod_dir / "volumes" / volume


async def write_tokens(client: KubeClient, pod: dict[str, Any], pod_dir: Path) -> list[TokenSource]:
    """Request and write every projected token of the pod; the sources written."""
    sources = token_sources(pod)
    for source in sources:
        token = await request_token(client, pod, source)
        target = volume_dir(pod_dir, source.volume) / source.path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".tmp-{target.name}")
        tmp.write_text(token)
        tmp.chmod(0o600)
        tmp.replace(target)  # atomic: a reader never sees half a token
    return sources


async def request_token(client: KubeClient, pod: dict[str, Any], source: TokenSource) -> str:
    meta = pod["metadata"]
    spec: dict[str, Any] = {
        "expirationSeconds": source.seconds,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]},
    }
    if source.audience:
        spec["audiences"] = [source.audience]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    sa = pod["spec"].get("serviceAccountName") or "default"
    result = await client.create(SERVICEACCOUNTS, body, meta["namespace"], name=sa, sub="token")
    return str(result["status"]["token"])


def refresh_after(sources: list[TokenSource]) -> float | None:
    return min(s.seconds for s in sources) * REFRESH_AT if sources else None


def rewrite_mount_paths(
    env: dict[str, str], pod: dict[str, Any], container: dict[str, Any], pod_dir: Path
) -> dict[str, str]:
    """The rule above: env values under a projected-token volume's mountPath point into the pod dir."""
    projected = {s.volume for s in token_sources(pod)}
    mounts = [
        (m["mountPath"].rstrip("/"), volume_dir(pod_dir, m["name"]))
        for m in container.get("volumeMounts") or []
        if m.get("name") in projected
    ]
    rewritten = dict(env)
    for name, value in env.items():
        for mount, local in mounts:
            if value == mount or value.startswith(mount + "/"):
                rewritten[name] = str(local) + value[len(mount) :]
                break
    return rewritten
