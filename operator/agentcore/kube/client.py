"""A small async Kubernetes REST client over aiohttp that speaks plain dicts.

kopf brings its own client for the operator; this one serves the node agent, the API server's
watch-backed cache and the trainer's status reports, where typed models would only cost time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from agentcore.kube.config import KubeConfig

JSON = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else str(body)
        self.reason = body.get("reason", "") if isinstance(body, dict) else ""
        super().__init__(f"HTTP {status}: {message}")


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST tree."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
EVENTS = Resource("", "v1", "events")
SECRETS = Resource("", "v1", "secrets")
CONFIGMAPS = Resource("", "v1", "configmaps")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases")
JOBS = Resource("batch", "v1", "jobs")


class KubeClient:
    def __init__(self, config: KubeConfig, timeout: float = 30) -> None:
        self.config = config
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self.config.ssl_context(), limit=50)
            # Watch events carry whole objects (up to etcd's ~1.5 MB): lines need a large buffer.
            self._session = aiohttp.ClientSession(
                base_url=self.config.server, connector=connector, read_bufsize=1 << 23
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self, content_type: str = "application/json") -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        url = path + (f"?{urlencode(params)}" if params else "")
        data = None if body is None else json.dumps(body)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with self._http().request(
            method, url, data=data, headers=self._headers(content_type), timeout=timeout
        ) as resp:
            payload = await resp.json(content_type=None) if resp.content_length != 0 else None
            if resp.status >= 400:
                raise ApiError(resp.status, payload)
            return payload

    # -- verbs -------------------------------------------------------------------------------
    async def get(
        self, res: Resource, name: str, namespace: str | None = None, sub: str | None = None
    ) -> JSON:
        result: JSON = await self.request("GET", res.path(namespace, name, sub))
        return result

    async def list(self, res: Resource, namespace: str | None = None, **params: Any) -> JSON:
        result: JSON = await self.request("GET", res.path(namespace), params=params or None)
        return result

    async def create(
        self,
        res: Resource,
        body: JSON,
        namespace: str | None = None,
        sub: str | None = None,
        name: str | None = None,
    ) -> JSON:
        result: JSON = await self.request("POST", res.path(namespace, name, sub), body)
        return result

    async def replace(
        self, res: Resource, name: str, body: JSON, namespace: str | None = None, sub: str | None = None
    ) -> JSON:
        result: JSON = await self.request("PUT", res.path(namespace, name, sub), body)
        return result

    async def patch(
        self,
        res: Resource,
        name: str,
        body: JSON,
        namespace: str | None = None,
        sub: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> JSON:
        result: JSON = await self.request(
            "PATCH", res.path(namespace, name, sub), body, content_type=content_type
        )
        return result

    async def delete(self, res: Resource, name: str, namespace: str | None = None, **options: Any) -> Any:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **options} if options else None
        return await self.request("DELETE", res.path(namespace, name), body)

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
        **params: Any,
    ) -> AsyncIterator[JSON]:
        """Yield watch events ({type, object}) until the server closes the stream."""
        query: dict[str, Any] = {
            "watch": "1",
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true",
            **params,
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        url = res.path(namespace) + "?" + urlencode(query)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        async with self._http().get(url, headers=self._headers(), timeout=timeout) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, await resp.json(content_type=None))
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)


# The project's own kinds (group/version from the API types).
TRAININGJOB_RESOURCE = Resource("training.agentcore.io", "v1alpha1", "trainingjobs")
EXPORTJOB_RESOURCE = Resource("training.agentcore.io", "v1alpha1", "exportjobs")
