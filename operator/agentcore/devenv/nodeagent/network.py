"""Pod addresses and DNS names on one machine, without network namespaces or a cluster DNS.

A pod with a ``subdomain`` (the pods of an Indexed Job behind a headless Service) gets its own
loopback address 127.x.y.z as status.podIP: Linux routes all of 127.0.0.0/8 to ``lo``, so the
address works at once, and two pods can listen on the same port (e.g. two distributed jobs'
MASTER_PORT) as long as each binds its own address. Its names
``<hostname>.<subdomain>.<namespace>.svc[.cluster.local]`` go into a managed block of
/etc/hosts (glibc's ``files`` source re-reads the file on every lookup), one block per node
agent, rewritten under an flock so agents of parallel test sessions do not lose each other's
lines, and removed when the pods go. Unlike a real cluster DNS, the names do not wait for the
headless Service to exist. Other pods keep 127.0.0.1, the node's address.

The file is rewritten in place rather than replaced, because /etc/hosts is often a bind mount.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DEFAULT_HOSTS_FILE = Path("/etc/hosts")
HOSTS_FILE_ENV = "AGENTCORE_HOSTS_FILE"  # tests point the agent at a scratch file
NODE_IP = "127.0.0.1"
_ADDRESS = re.compile(r"^\s*(127\.\d+\.\d+\.\d+)\s")


def hosts_file() -> Path:
    return Path(os.environ.get(HOSTS_FILE_ENV) or DEFAULT_HOSTS_FILE)


def pod_dns_names(pod: dict[str, Any]) -> list[str]:
    """The names a cluster DNS gives a pod with a subdomain; [] for any other pod."""
    meta, spec = pod["metadata"], pod["spec"]
    subdomain = spec.get("subdomain")
    if not subdomain:
        return []
    base = f"{spec.get('hostname') or meta['name']}.{subdomain}.{meta['namespace']}.svc"
    return [base, f"{base}.cluster.local"]


class PodNetwork:
    """The node agent's share of the hosts file: pod uid → (address, names)."""

    def __init__(self, owner: str, path: Path | None = None) -> None:
        self.owner = owner
        self.path = path or hosts_file()
        self.entries: dict[str, tuple[str, list[str]]] = {}

    @property
    def _begin(self) -> str:
        return f"# BEGIN agentcore node agent {self.owner}"

    @property
    def _end(self) -> str:
        return f"# END agentcore node agent {self.owner}"

    def attach(self, pod: dict[str, Any]) -> str:
        """The pod's address, after its names resolve to it (NODE_IP for a pod without names)."""
        names = pod_dns_names(pod)
        uid = pod["metadata"]["uid"]
        if not names:
            return NODE_IP
        if uid in self.entries:
            return self.entries[uid][0]
        with self._locked() as lines:
            taken = {m.group(1) for line in lines if (m := _ADDRESS.match(line))}
            address = _free_address(uid, taken)
            self.entries[uid] = (address, names)
            lines[:] = self._render(lines)
        return address

    def detach(self, uid: str) -> None:
        if self.entries.pop(uid, None) is None:
            return
        with self._locked() as lines:
            lines[:] = self._render(lines)

    def close(self) -> None:
        """Remove the whole block (the agent stops)."""
        self.entries.clear()
        with self._locked() as lines:
            lines[:] = self._render(lines)

    def _render(self, lines: list[str]) -> list[str]:
        kept, inside = [], False
        for line in lines:
            if line.rstrip("\n") == self._begin:
                inside = True
            elif line.rstrip("\n") == self._end:
                inside = False
            elif not inside:
                kept.append(line)
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
        if self.entries:
            block = [f"{address} {' '.join(names)}\n" for address, names in self.entries.values()]
            kept += [self._begin + "\n", *block, self._end + "\n"]
        return kept

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[str]]:
        """The file's lines, written back (in place) when the block ends, under an exclusive flock."""
        self.path.touch(exist_ok=True)
        with self.path.open("r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                lines = handle.readlines()
                yield lines
                text = "".join(lines)
                handle.seek(0)
                handle.write(text)
                handle.truncate(len(text.encode()))
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _free_address(uid: str, taken: set[str]) -> str:
    """A stable address in 127.64.0.0/10 derived from the pod's uid, skipping taken ones."""
    for attempt in range(1000):
        digest = int.from_bytes(hashlib.sha256(f"{uid}/{attempt}".encode()).digest()[:4], "big")
        address = f"127.{64 + digest % 64}.{(digest >> 6) % 256}.{1 + (digest >> 14) % 254}"
        if address not in taken:
            return address
    raise RuntimeError("no free loopback address for the pod")
