"""The ranks of one run: torch.distributed (gloo on CPU, NCCL on GPU) behind a small interface.

A TrainingJob with ``workers: N`` runs N trainer pods; the operator gives each torch's env://
variables (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK). Every rank holds the same state (the same
seed, or the checkpoint rank 0 broadcast), draws the same batch, plays its own share of whole
query groups, and takes part in the same collectives in the same order; the trainers need only
`Collective`. `Single` is the one-worker case, so one code path serves both.

torch is imported only when WORLD_SIZE > 1: the built-in policy needs it only for these
collectives (the trainer's ``distributed`` extra, or ``llm``, which includes torch).

Failure: a collective whose peer is gone raises (gloo/NCCL notice the closed connection at once,
and every collective has a timeout, ``AGENTCORE_COLLECTIVE_TIMEOUT_SECONDS``, for a peer that
hangs); `PeerLost` makes the trainer exit with PEER_LOST_EXIT_CODE, which the Job's
podFailurePolicy does not count against this rank, and the replacement pods of the whole group
resume from the newest checkpoint.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

PEER_LOST_EXIT_CODE = 75  # EX_TEMPFAIL; the operator's children.PEER_LOST_EXIT_CODE
DEFAULT_COLLECTIVE_TIMEOUT = 1800.0  # longer than rank 0's slowest solo work (final evaluation)
DEFAULT_RENDEZVOUS_TIMEOUT = 900.0  # longer than the Job controller's pod backoff (up to 6 min)
DISTRIBUTED_EXTRA_HINT = (
    "workers > 1 needs torch in the trainer image for torch.distributed: "
    "pip install 'agentcore-trainer[distributed]' (or [llm]), or build with "
    "--build-arg TRAINER_EXTRAS=distributed"
)

T = TypeVar("T")
FloatArray = NDArray[np.float64]


class PeerLost(RuntimeError):
    """Another rank of the group is gone (or stuck past the collective timeout)."""


class Collective(Protocol):
    rank: int
    world_size: int

    def sum(self, array: FloatArray) -> FloatArray:
        """The element-wise sum of every rank's array (all ranks get it)."""
        ...

    def gather(self, obj: T) -> list[T]:
        """Every rank's object, in rank order (all ranks get the list)."""
        ...

    def broadcast(self, obj: T) -> T:
        """Rank 0's object."""
        ...

    def any(self, flag: bool) -> bool:
        """True on every rank if it is True on some rank."""
        ...

    def barrier(self) -> None: ...

    def close(self) -> None: ...


class Single:
    """One worker: every collective is the identity."""

    rank = 0
    world_size = 1

    def sum(self, array: FloatArray) -> FloatArray:
        return array

    def gather(self, obj: T) -> list[T]:
        return [obj]

    def broadcast(self, obj: T) -> T:
        return obj

    def any(self, flag: bool) -> bool:
        return flag

    def barrier(self) -> None:
        return None

    def close(self) -> None:
        return None


SINGLE = Single()


def is_primary(comm: Collective) -> bool:
    """Rank 0 alone writes checkpoints, status and trajectories."""
    return comm.rank == 0


def shard(n_groups: int, rank: int, world_size: int) -> range:
    """The query groups (indices into the iteration's batch) rank `rank` plays: contiguous, sizes
    differing by at most one, never splitting a group, so advantages stay exact."""
    return range(n_groups * rank // world_size, n_groups * (rank + 1) // world_size)


@dataclass(frozen=True)
class World:
    rank: int
    world_size: int
    master_addr: str
    master_port: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> World | None:
        """torch's env:// variables, checked; None for one worker (WORLD_SIZE unset or 1)."""
        size = _int_var(env, "WORLD_SIZE", "1")
        if size == 1:
            return None
        if size < 1:
            raise ValueError(f"WORLD_SIZE must be >= 1, not {size}")
        rank = _int_var(env, "RANK", None)
        if not 0 <= rank < size:
            raise ValueError(f"RANK must be in [0, WORLD_SIZE={size}), not {rank}")
        addr = env.get("MASTER_ADDR", "")
        if not addr:
            raise ValueError("MASTER_ADDR must be set when WORLD_SIZE > 1")
        port = _int_var(env, "MASTER_PORT", "29500")
        if not 0 < port < 65536:
            raise ValueError(f"MASTER_PORT must be a TCP port, not {port}")
        return cls(rank, size, addr, port)


def _int_var(env: Mapping[str, str], name: str, default: str | None) -> int:
    raw = env.get(name, default)
    if raw is None or raw == "":
        raise ValueError(f"{name} must be set when WORLD_SIZE > 1")
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from None


def _seconds(env: Mapping[str, str], name: str, default: float) -> dt.timedelta:
    return dt.timedelta(seconds=float(env.get(name) or default))


def connect(world: World | None, env: Mapping[str, str] | None = None) -> Collective:
    """The run's collective: `SINGLE`, or a torch.distributed process group joined at MASTER_ADDR."""
    if world is None:
        return SINGLE
    return TorchCollective(world, env if env is not None else os.environ)


class TorchCollective:
    """torch.distributed with a TCPStore rendezvous; gloo (CPU) or NCCL (a visible GPU)."""

    def __init__(self, world: World, env: Mapping[str, str]) -> None:
        try:
            import torch
            import torch.distributed as dist
        except ImportError as exc:
            raise ValueError(DISTRIBUTED_EXTRA_HINT) from exc
        self.rank, self.world_size = world.rank, world.world_size
        self._torch, self._dist = torch, dist
        rendezvous = _seconds(env, "AGENTCORE_RENDEZVOUS_TIMEOUT_SECONDS", DEFAULT_RENDEZVOUS_TIMEOUT)
        timeout = _seconds(env, "AGENTCORE_COLLECTIVE_TIMEOUT_SECONDS", DEFAULT_COLLECTIVE_TIMEOUT)
        store = dist.TCPStore(
            world.master_addr, world.master_port, world.world_size, world.rank == 0, rendezvous,
            wait_for_workers=True, master_listen_fd=_listen(world) if world.rank == 0 else None,
        )  # fmt: skip
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(
            backend, store=store, rank=world.rank, world_size=world.world_size, timeout=timeout
        )
        # Objects travel as bytes in tensors: on the CPU for gloo, on this rank's GPU for NCCL.
        self._device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else None

    def _call(self, op: Callable[[], T]) -> T:
        try:
            return op()
        except RuntimeError as exc:  # DistBackendError and the store's errors derive from it
            raise PeerLost(f"rank {self.rank}: a collective failed: {exc}") from exc

    def sum(self, array: FloatArray) -> FloatArray:
        tensor = self._torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64).copy())
        if self._device is not None:
            tensor = tensor.to(self._device)
        self._call(lambda: self._dist.all_reduce(tensor))
        return np.asarray(tensor.cpu().numpy(), dtype=np.float64).reshape(np.shape(array))

    def gather(self, obj: T) -> list[T]:
        out: list[Any] = [None] * self.world_size
        self._call(lambda: self._dist.all_gather_object(out, obj))
        return out

    def broadcast(self, obj: T) -> T:
        box: list[Any] = [obj]
        self._call(lambda: self._dist.broadcast_object_list(box, src=0, device=self._device))
        return box[0]

    def any(self, flag: bool) -> bool:
        return bool(self.sum(np.array([1.0 if flag else 0.0]))[0] > 0)

    def barrier(self) -> None:
        self.sum(np.zeros(1))  # an all-reduce: unlike gloo's barrier it honours the group timeout

    def close(self) -> None:
        if self._dist.is_initialized():
            self._dist.destroy_process_group()


def _listen(world: World) -> int:
    """Rank 0's rendezvous socket, bound to its own address (MASTER_ADDR resolves to it) rather
    than to every interface: pods that share a host network, as under the local node agent, can
    then each use the same MASTER_PORT."""
    try:
        address = socket.gethostbyname(world.master_addr)
    except OSError:  # not published yet: a real pod has its own network namespace anyway
        address = ""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, world.master_port))
    sock.listen(128)
    return sock.detach()
