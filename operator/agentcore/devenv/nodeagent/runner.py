"""Runs one pod's containers as local processes and reports their status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agentcore.devenv.nodeagent.images import ImageEntry, ImageNotFound, resolve
from agentcore.devenv.nodeagent.network import NODE_IP
from agentcore.devenv.nodeagent.podenv import EnvError
from agentcore.devenv.nodeagent.status import ContainerState, now, pod_conditions
from agentcore.devenv.procs import _die_with_parent

log = logging.getLogger("agentcore.nodeagent")

StatusSink = Callable[[dict[str, Any]], Awaitable[None]]
EnvResolver = Callable[[dict[str, Any]], Awaitable[dict[str, str]]]

_RESTART_BACKOFF_MAX = 10.0


class PodRunner:
    """Init containers one after another, then the app containers side by side."""

    def __init__(
        self,
        pod: dict[str, Any],
        pod_dir: Path,
        images: list[ImageEntry],
        base_env: dict[str, str],
        resolve_env: EnvResolver,
        report: StatusSink,
    ) -> None:
        self.pod = pod
        self.dir = pod_dir
        self.images = images
        self.base_env = base_env
        self.resolve_env = resolve_env
        self.report = report
        spec = pod["spec"]
        self.restart_policy: str = spec.get("restartPolicy", "Always")
        self.init = [self._state(c, pod, "initContainerStatuses") for c in spec.get("initContainers", [])]
        self.main = [self._state(c, pod, "containerStatuses") for c in spec.get("containers", [])]
        self.start_time = pod.get("status", {}).get("startTime") or now()
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._terminating = False
        self.task: asyncio.Task[None] | None = None
        self.pod_ip = NODE_IP  # its own loopback address when it has DNS names (see network.py)

    @staticmethod
    def _state(container: dict[str, Any], pod: dict[str, Any], key: str) -> ContainerState:
        previous = {s["name"]: s for s in pod.get("status", {}).get(key, [])}
        restarts = int(previous.get(container["name"], {}).get("restartCount", 0))
        return ContainerState(container["name"], container.get("image", ""), restart_count=restarts)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"pod-{self.pod['metadata']['name']}")

    async def terminate(self, grace: float) -> None:
        """SIGTERM every process, SIGKILL what is left after `grace` seconds, then wait for the run."""
        self._terminating = True
        for proc in list(self._procs.values()):
            _signal(proc, signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_exited(), timeout=max(grace, 0.1))
        for proc in list(self._procs.values()):
            _signal(proc, signal.SIGKILL)
        if self.task:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.task, timeout=15)

    async def _all_exited(self) -> None:
        await asyncio.gather(*(p.wait() for p in list(self._procs.values())))

    async def _run(self) -> None:
        try:
            await self._publish()
            for state in self.init:
                container = self._spec_of(state.name, "initContainers")
                if not await self._run_container(container, state, init=True):
                    await self._publish(final=True)
                    return
            await asyncio.gather(
                *(self._run_container(self._spec_of(s.name, "containers"), s, init=False) for s in self.main)
            )
            await self._publish(final=True)
        except Exception:
            log.exception("pod %s failed in the node agent", self.pod["metadata"]["name"])
            raise

    def _spec_of(self, name: str, key: str) -> dict[str, Any]:
        return next(c for c in self.pod["spec"].get(key, []) if c["name"] == name)

    # -- one container -------------------------------------------------------------------------
    async def _run_container(self, container: dict[str, Any], state: ContainerState, init: bool) -> bool:
        """Run (and restart per policy) one container; True when it ended successfully."""
        backoff = 1.0
        while not self._terminating:
            try:
                argv = resolve(
                    self.images, state.image, container.get("command", []), container.get("args", [])
                )
                env = {**self.base_env, **await self.resolve_env(container)}
            except ImageNotFound as exc:
                state.waiting("ErrImagePull", str(exc))
                await self._publish()
                return False
            except EnvError as exc:
                state.waiting("CreateContainerConfigError", str(exc))
                await self._publish()
                return False
            code = await self._exec(container["name"], argv, env, state)
            if not self._should_restart(code, init):
                return code == 0
            state.last_state, state.restart_count = state.state, state.restart_count + 1
            state.waiting("CrashLoopBackOff" if code else "Completed", f"restarting in {backoff:.0f}s")
            await self._publish()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _RESTART_BACKOFF_MAX)
        return False

    def _should_restart(self, code: int, init: bool) -> bool:
        if self._terminating or self.restart_policy == "Never":
            return False
        if self.restart_policy == "OnFailure" or init:
            return code != 0
        return True  # Always

    async def _exec(self, name: str, argv: list[str], env: dict[str, str], state: ContainerState) -> int:
        log_path = self.dir / f"{name}.log"
        with log_path.open("ab") as log_file:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdout=log_file,
                    stderr=asyncio.subprocess.STDOUT,
                    stdin=asyncio.subprocess.DEVNULL,
                    env=env,
                    cwd=self.dir,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                log_file.write(f"agentcore node agent: cannot start {argv[0]!r}: {exc}\n".encode())
                state.terminated(128, now(), reason="StartError")
                await self._publish()
                return 128
            self._procs[name] = proc
            state.running()
            started = state.state["running"]["startedAt"]
            await self._publish()
            code = await proc.wait()
            self._procs.pop(name, None)
        exit_code = code if code >= 0 else 128 - code  # killed by signal N -> 128+N, as runtimes report
        state.terminated(exit_code, started)
        await self._publish()
        return exit_code

    # -- status --------------------------------------------------------------------------------
    def phase(self, final: bool) -> str:
        codes = [s.exit_code for s in self.main]
        if any(
            s.state.get("waiting", {}).get("reason") in ("ErrImagePull", "CreateContainerConfigError")
            for s in self.init + self.main
        ):
            return "Pending"
        if any(s.exit_code not in (None, 0) for s in self.init) and final:
            return "Failed"
        if final and all(c is not None for c in codes):
            return "Succeeded" if all(c == 0 for c in codes) else "Failed"
        if final and self._terminating:
            return "Failed"
        return "Running" if any("running" in s.state for s in self.main) or not final else "Pending"

    async def _publish(self, final: bool = False) -> None:
        ready = all("running" in s.state for s in self.main) and bool(self.main)
        initialized = all(s.exit_code == 0 for s in self.init)
        status: dict[str, Any] = {
            "phase": self.phase(final),
            "conditions": pod_conditions(ready and not final, initialized),
            "hostIP": NODE_IP,
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "containerStatuses": [s.to_status() for s in self.main],
        }
        if self.init:
            status["initContainerStatuses"] = [s.to_status() for s in self.init]
        await self.report(status)


def _signal(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
