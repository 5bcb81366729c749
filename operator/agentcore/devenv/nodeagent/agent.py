"""The node agent: a process-based stand-in for the kubelet and the scheduler on one node.

It registers a Ready Node and keeps its Lease fresh, binds pending pods to itself, runs their
containers as local processes (see `runner`), reports status, and on deletion sends SIGTERM,
waits the grace period, then SIGKILL, before completing the deletion.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

from agentcore.devenv.binaries import cache_root
from agentcore.devenv.nodeagent import volumes
from agentcore.devenv.nodeagent.images import ImageEntry
from agentcore.devenv.nodeagent.network import PodNetwork
from agentcore.devenv.nodeagent.podenv import container_env
from agentcore.devenv.nodeagent.runner import PodRunner
from agentcore.devenv.nodeagent.status import node_status, now
from agentcore.kube.client import LEASES, NODES, PODS, SERVICEACCOUNTS, ApiError, KubeClient
from agentcore.kube.config import KubeConfig

log = logging.getLogger("agentcore.nodeagent")

LEASE_SECONDS = 40
RENEW_EVERY = 10.0
# How long a pod status report or token request keeps retrying through an apiserver outage: a lost
# "Succeeded" would leave the pod's Job running forever, as a kubelet that gave up would.
RETRY_FOR_SECONDS = 180.0


def transient(exc: BaseException) -> bool:
    """The apiserver is restarting or overloaded: worth another attempt."""
    if isinstance(exc, ApiError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, TimeoutError | OSError | aiohttp.ClientError)


def retrying() -> AsyncRetrying:
    return AsyncRetrying(
        stop=stop_after_delay(RETRY_FOR_SECONDS),
        wait=wait_exponential_jitter(initial=0.2, max=5),
        retry=retry_if_exception(transient),
        reraise=True,
    )


class NodeAgent:
    def __init__(
        self,
        client: KubeClient,
        name: str,
        state_dir: Path,
        images: list[ImageEntry],
        labels: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.name = name
        self.dir = state_dir
        self.images = images
        self.labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "agentcore-local",
            **(labels or {}),
        }
        self.runners: dict[str, PodRunner] = {}
        # One hosts-file block per agent process: parallel test sessions each run their own agent.
        instance = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]
        self.network = PodNetwork(f"{name}/{instance}")
        self._deleting: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- top level -----------------------------------------------------------------------------
    async def run(self) -> None:
        await self.register()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._watch_pods()
        finally:
            heartbeat.cancel()
            await self.shutdown()

    async def shutdown(self) -> None:
        await asyncio.gather(*(r.terminate(5) for r in self.runners.values()), return_exceptions=True)
        await asyncio.to_thread(self.network.close)

    # -- node ----------------------------------------------------------------------------------
    async def register(self) -> None:
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name, "labels": self.labels}}
        try:
            await self.client.create(NODES, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            await self.client.patch(NODES, self.name, {"metadata": {"labels": self.labels}})
        await self._post_node_status()
        await self._renew_lease()
        log.info("node %s registered and Ready", self.name)

    async def _post_node_status(self) -> None:
        await self.client.patch(
            NODES, self.name, {"status": node_status(self.name, self.labels)}, sub="status"
        )

    async def _heartbeat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(RENEW_EVERY)
            beats += 1
            try:
                await self._renew_lease()
                if beats % 3 == 0:
                    await self._post_node_status()
            except Exception:
                log.exception("heartbeat failed; retrying")

    async def _renew_lease(self) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        node = await self.client.get(NODES, self.name)
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": "kube-node-lease",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": node["metadata"]["uid"]}
                ],
            },
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": stamp},
        }
        try:
            await self.client.patch(LEASES, self.name, {"spec": body["spec"]}, "kube-node-lease")
        except ApiError as exc:
            if exc.status != 404:
                raise
            await self.client.create(LEASES, body, "kube-node-lease")

    # -- pods ----------------------------------------------------------------------------------
    async def _watch_pods(self) -> None:
        while True:
            # The list is inside the try: a kube-apiserver restarting refuses it for a while, and
            # drops a watch with errors that are not OSErrors (ServerDisconnectedError).
            try:
                listing = await self.client.list(PODS)
                for pod in listing.get("items", []):
                    await self._handle(pod)
                rv = listing["metadata"]["resourceVersion"]
                async for event in self.client.watch(PODS, resource_version=rv):
                    if event["type"] == "ERROR":
                        break
                    if event["type"] != "BOOKMARK":
                        await self._handle(event["object"], deleted=event["type"] == "DELETED")
            except (TimeoutError, ApiError, OSError, aiohttp.ClientError) as exc:
                log.warning("pod watch ended (%s: %s); relisting", type(exc).__name__, exc)
                await asyncio.sleep(1)

    async def _handle(self, pod: dict[str, Any], deleted: bool = False) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        key = meta["uid"]
        node = spec.get("nodeName")
        if deleted:
            runner = self.runners.pop(key, None)
            if runner:
                self._spawn(runner.terminate(0))
            self._spawn(asyncio.to_thread(self.network.detach, key))
            return
        if not node:
            if spec.get("schedulerName", "default-scheduler") == "default-scheduler" and not meta.get(
                "deletionTimestamp"
            ):
                self._spawn(self._bind(pod))
            return
        if node != self.name:
            return
        if meta.get("deletionTimestamp"):
            if key not in self._deleting:
                self._deleting.add(key)
                self._spawn(self._delete(pod))
            return
        if key not in self.runners and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed"):
            self._start(pod)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)

    async def _bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        problem = self._unschedulable(pod)
        if problem:
            cond = {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": problem,
                "lastTransitionTime": now(),
            }
            with contextlib.suppress(ApiError):
                await self.client.patch(
                    PODS, meta["name"], {"status": {"conditions": [cond]}}, meta["namespace"], sub="status"
                )
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.name},
        }
        try:
            await self.client.create(PODS, binding, meta["namespace"], name=meta["name"], sub="binding")
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    def _unschedulable(self, pod: dict[str, Any]) -> str | None:
        selector = pod["spec"].get("nodeSelector") or {}
        missing = {k: v for k, v in selector.items() if self.labels.get(k) != v}
        if missing:
            return f"0/1 nodes are available: node {self.name} does not match nodeSelector {missing}"
        return None

    def _start(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        pod_dir = self.dir / "pods" / meta["namespace"] / f"{meta['name']}-{meta['uid'][:8]}"
        pod_dir.mkdir(parents=True, exist_ok=True)
        runner = PodRunner(
            pod, pod_dir, self.images, {}, lambda c: self._container_env(pod, c, pod_dir), self._reporter(pod)
        )
        self.runners[meta["uid"]] = runner
        self._spawn(self._prepare_and_start(runner, pod, pod_dir))

    async def _prepare_and_start(self, runner: PodRunner, pod: dict[str, Any], pod_dir: Path) -> None:
        # The pod's names resolve before its processes start (they may rendezvous at once).
        runner.pod_ip = await asyncio.to_thread(self.network.attach, pod)
        pod.setdefault("status", {})["podIP"] = runner.pod_ip  # what fieldRef status.podIP reads
        runner.base_env = await self._base_env(pod, pod_dir)
        tokens = await self._projected_tokens(pod, pod_dir)
        runner.start()
        if tokens and runner.task is not None:
            self._spawn(self._refresh_tokens(runner, pod, pod_dir))
        uid = pod["metadata"]["uid"]
        if runner.task is not None:  # a finished pod gives its address back, as a kubelet does
            runner.task.add_done_callback(lambda _: self._spawn(asyncio.to_thread(self.network.detach, uid)))

    def _reporter(self, pod: dict[str, Any]) -> Any:
        meta = pod["metadata"]
        lock = asyncio.Lock()

        async def report(status: dict[str, Any]) -> None:
            async with lock:
                try:
                    async for attempt in retrying():
                        with attempt:
                            await self.client.patch(
                                PODS, meta["name"], {"status": status}, meta["namespace"], sub="status"
                            )
                except ApiError as exc:
                    if exc.status != 404:
                        raise

        return report

    async def _container_env(
        self, pod: dict[str, Any], container: dict[str, Any], pod_dir: Path
    ) -> dict[str, str]:
        env = await container_env(self.client, pod, container)
        return volumes.rewrite_mount_paths(env, pod, container, pod_dir)

    async def _projected_tokens(self, pod: dict[str, Any], pod_dir: Path) -> list[volumes.TokenSource]:
        """The pod's projected service-account tokens (see volumes.py); none written on failure (the
        container then finds no token file, as a kubelet's would not start)."""
        try:
            async for attempt in retrying():
                with attempt:
                    return await volumes.write_tokens(self.client, pod, pod_dir)
        except ApiError as exc:
            meta = pod["metadata"]
            log.warning("no projected token for pod %s/%s: %s", meta["namespace"], meta["name"], exc)
        return []

    async def _refresh_tokens(self, runner: PodRunner, pod: dict[str, Any], pod_dir: Path) -> None:
        """Fresh tokens at 80% of their lifetime while the pod runs (the kubelet's rotation)."""
        delay = volumes.refresh_after(volumes.token_sources(pod)) or 0.0
        while runner.task is not None and not runner.task.done():
            done, _ = await asyncio.wait({runner.task}, timeout=delay)
            if not done:
                await self._projected_tokens(pod, pod_dir)

    async def _base_env(self, pod: dict[str, Any], pod_dir: Path) -> dict[str, str]:
        env = {
            "PATH": os.pathsep.join(
                [str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]
            ),
            "HOME": str(pod_dir),
            "HOSTNAME": pod["spec"].get("hostname") or pod["metadata"]["name"],
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }
        for passthrough in ("AGENTCORE_CACHE", "TMPDIR", "PYTHONPATH"):
            if passthrough in os.environ:
                env[passthrough] = os.environ[passthrough]
        # One model cache per node (as a kubelet's image cache is), not one per pod's HOME: the
        # trainer converts a GGUF model once, and later pods of any job load the conversion.
        env["AGENTCORE_MODEL_CACHE"] = os.environ.get("AGENTCORE_MODEL_CACHE") or str(cache_root() / "models")
        env.update(await self._service_account_env(pod, pod_dir))
        return env

    async def _service_account_env(self, pod: dict[str, Any], pod_dir: Path) -> dict[str, str]:
        """The seam for in-cluster credentials: a per-pod kubeconfig with a bound token."""
        spec, meta = pod["spec"], pod["metadata"]
        if spec.get("automountServiceAccountToken") is False:
            return {}
        sa = spec.get("serviceAccountName") or "default"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": 86400,
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        try:
            async for attempt in retrying():
                with attempt:
                    token = await self.client.create(
                        SERVICEACCOUNTS, request, meta["namespace"], name=sa, sub="token"
                    )
        except ApiError as exc:
            log.warning("no token for service account %s/%s: %s", meta["namespace"], sa, exc)
            return {}
        return write_pod_credentials(pod_dir, self.client.config, token["status"]["token"], meta["namespace"])

    async def _delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        runner = self.runners.pop(meta["uid"], None)
        if runner:
            grace = meta.get(
                "deletionGracePeriodSeconds", pod["spec"].get("terminationGracePeriodSeconds", 30)
            )
            await runner.terminate(float(grace or 0))
        with contextlib.suppress(ApiError):
            await self.client.delete(
                PODS,
                meta["name"],
                meta["namespace"],
                gracePeriodSeconds=0,
                preconditions={"uid": meta["uid"]},
            )
        self._deleting.discard(meta["uid"])


def write_pod_credentials(pod_dir: Path, config: KubeConfig, token: str, namespace: str) -> dict[str, str]:
    sa_dir = pod_dir / "serviceaccount"
    sa_dir.mkdir(parents=True, exist_ok=True)
    (sa_dir / "token").write_text(token)
    (sa_dir / "namespace").write_text(namespace)
    if config.ca_file:
        shutil.copyfile(config.ca_file, sa_dir / "ca.crt")
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "pod",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": config.server, "certificate-authority": str(sa_dir / "ca.crt")},
            }
        ],
        "users": [{"name": "sa", "user": {"tokenFile": str(sa_dir / "token")}}],
        "contexts": [{"name": "pod", "context": {"cluster": "local", "user": "sa", "namespace": namespace}}],
    }
    path = pod_dir / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    host, _, port = config.server.removeprefix("https://").rpartition(":")
    return {
        "KUBECONFIG": str(path),
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "AGENTCORE_SERVICEACCOUNT_DIR": str(sa_dir),
    }


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("node agent task failed", exc_info=task.exception())
