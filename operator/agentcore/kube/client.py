"""The project's Kubernetes client: plain JSON dicts over kubernetes-asyncio's transport and auth.

kubernetes-asyncio is the pick: it was already a dependency and runs on aiohttp (one HTTP stack
with the API server, where lightkube and kr8s would bring httpx), and its loaders run exec and
auth-provider plugins, merge every $KUBECONFIG path and re-read the rotating in-cluster token.
Its generated models are slow, so requests go through ``ApiClient.call_api`` with
``_preload_content=False`` and the raw aiohttp response is parsed as JSON; a watch streams its
lines and leaves resourceVersion, bookmarks and 410 Gone to the caller (the TrainingJob cache).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient

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
SERVICES = Resource("", "v1", "services")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases")
JOBS = Resource("batch", "v1", "jobs")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")


WriteGuard = Callable[[str, str], None]


class KubeClient:
    """``before_write(method, path)`` runs right before every request that is not a GET and may
    raise to stop it: the operator's leader fence (every write of its reconcilers passes here)."""

    def __init__(
        self,
        config: KubeConfig,
        timeout: float = 30,
        user_agent: str = "agentcore",
        max_connections: int = 32,
        before_write: WriteGuard | None = None,
    ) -> None:
        self.config = config
        # Requests in flight at once (the library's default is 100): more only queue at the
        # apiserver, and each TLS connection holds a 256 KiB read buffer (bench/operator_scale.py).
        self.max_connections = max_connections
        # Names the caller in the apiserver's audit log (bench/operator_scale.py counts by it).
        self.user_agent = user_agent
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._api: ApiClient | None = None
        self._before_write = before_write

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _client(self) -> ApiClient:
        if self._api is None:
            # The TLS context is built from the credentials, so they must be there first.
            await self.config.authenticate()
            if self._api is None:
                self.config.configuration.connection_pool_maxsize = self.max_connections
                self._api = _without_env_lookups(ApiClient(self.config.configuration), self._traces())
                self._api.user_agent = self.user_agent
        return self._api

    def _traces(self) -> list[aiohttp.TraceConfig]:
        """The guard again at the last moment aiohttp offers: the connection is ours and no byte
        of the request is written yet (a raise there aborts it). Between this and the socket
        write there is no I/O wait, only the body writer's task switch."""
        guard = self._before_write
        if guard is None:
            return []

        async def headers_ready(_: object, __: object, params: aiohttp.TraceRequestHeadersSentParams) -> None:
            if params.method != "GET":
                guard(params.method, params.url.path)
                # When the guard let it through, in the apiserver's audit log (userAgent): a write
                # received after the lease moved on can be told from one sent after it.
                stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                params.headers["User-Agent"] = f"{params.headers.get('User-Agent', '')} (fenced {stamp})"

        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(headers_ready)
        return [trace]

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    async def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
        client_timeout: aiohttp.ClientTimeout | None = None,
        accept: str = "application/json",
    ) -> aiohttp.ClientResponse:
        call = (method, path, body, params, content_type, client_timeout, accept)
        response = await self._call(*call)
        if response.status == 401 and await self.config.renew():
            response.release()
            response = await self._call(*call)
        return response

    async def _call(
        self,
        method: str,
        path: str,
        body: Any,
        params: dict[str, Any] | None,
        content_type: str,
        client_timeout: aiohttp.ClientTimeout | None,
        accept: str,
    ) -> aiohttp.ClientResponse:
        api = await self._client()
        if self._before_write is not None and method != "GET":
            self._before_write(method, path)  # early: a refused write takes no connection
        response: aiohttp.ClientResponse = await api.call_api(
            path,
            method,
            query_params=params,
            header_params={"Accept": accept, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=client_timeout or self._timeout,
        )
        return response

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        async with await self._send(method, path, body, params, content_type) as resp:
            payload = await resp.read()
            if resp.status >= 400:
                raise ApiError(resp.status, _error_body(payload))
            return json.loads(payload) if payload else None

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, params: dict[str, Any] | None = None, total_seconds: float | None = None
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A GET whose body is not JSON (e.g. pods/NAME/log): the raw response, status checked."""
        client_timeout = aiohttp.ClientTimeout(total=total_seconds)
        resp = await self._send("GET", path, params=params, client_timeout=client_timeout, accept="*/*")
        async with resp:
            if resp.status >= 400:
                raise ApiError(resp.status, _error_body(await resp.read()))
            yield resp

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
        # No total limit: the server ends the stream after timeoutSeconds; a silent socket is dead.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout_seconds + 30)
        async with await self._send("GET", res.path(namespace), params=query, client_timeout=timeout) as resp:
            if resp.status >= 400:
                raise ApiError(resp.status, _error_body(await resp.read()))
            async for line in resp.content:
                if line.strip():
                    yield json.loads(line)


def _without_env_lookups(api: ApiClient, traces: list[aiohttp.TraceConfig]) -> ApiClient:
    """Give the library's connection pool a session that does not consult proxy variables and
    ~/.netrc on every request (two thread hops each: 4x the CPU of a GET, see bench/kube_client.py).
    A kubeconfig's proxy-url is still passed per request; $HTTPS_PROXY is ignored, as it was before.
    """
    library = api.rest_client.pool_manager
    connector = library.connector
    library.detach()
    # Watch events carry whole objects (etcd allows ~1.5 MB): lines need a large buffer.
    api.rest_client.pool_manager = aiohttp.ClientSession(
        connector=connector, read_bufsize=1 << 23, trace_configs=traces or None
    )
    return api


def _error_body(payload: bytes) -> Any:
    """The apiserver's Status object; proxies and load balancers may answer in plain text."""
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        return payload.decode(errors="replace")


# The project's own kinds (group/version from the API types).
TRAININGJOB_RESOURCE = Resource("training.agentcore.io", "v1alpha1", "trainingjobs")
EXPORTJOB_RESOURCE = Resource("training.agentcore.io", "v1alpha1", "exportjobs")
