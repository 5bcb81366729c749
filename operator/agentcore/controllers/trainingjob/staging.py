"""Copies a TrainingJob's ``secretKeyRef`` data into the platform store for its trainer.

Why: the trainer reads its data through the API server's ingestion endpoint, and the chart's API
server may not read Secrets (it faces tenants). The operator may read a Secret by name, after
``_check_secret_refs`` found it labelled for TrainingJobs, so it stages the key before it creates
the trainer's Job (see ``agentcore.storage.staged`` for where and why there)."""

from __future__ import annotations

import asyncio
import logging

from agentcore.api.training import TrainingJob
from agentcore.controllers.trainingjob.children import secret_sources
from agentcore.datasources import DataSourceError, parse_queries, secret_text
from agentcore.kube.client import KubeClient
from agentcore.storage.objectstore import ObjectStore
from agentcore.storage.staged import STAGED_PREFIX, staged_key, staged_prefix, uid_of

log = logging.getLogger("agentcore.operator")

NO_STORE = (
    "{field}: Secret data is staged for the trainer in the platform object store, and the "
    "operator has none configured (AGENTCORE_OBJECT_STORE)"
)


class SecretDataStager:
    def __init__(self, store: ObjectStore | None) -> None:
        self.store = store

    def refused(self, tj: TrainingJob) -> str | None:
        """Why this job's data cannot be staged here, naming the field; None if it can."""
        sources = secret_sources(tj)
        if sources and self.store is None:
            return NO_STORE.format(field=f"{sources[0][0]}Data.secretKeyRef")
        return None

    async def stage(self, kube: KubeClient, tj: TrainingJob) -> None:
        """Copy each Secret key the job's data names (validated again: it may have changed since
        the checks). Idempotent: a retried creation writes the same keys."""
        ns, uid = tj.metadata.namespace or "", tj.metadata.uid or ""
        for kind, ref in secret_sources(tj):
            assert self.store is not None  # refused() said so before any child was created
            try:
                text = await secret_text(kube, ns, ref)
                await parse_queries(text)
            except DataSourceError as exc:
                raise DataSourceError(f"{kind}Data.secretKeyRef: {exc}") from exc
            key = staged_key(ns, uid, kind)
            await asyncio.to_thread(self.store.put_bytes, key, text.encode(), "application/json")

    async def drop(self, namespace: str, uid: str) -> None:
        """The job is gone: delete its copies (a copy of a Secret outlives it no longer)."""
        if self.store is None:
            return
        try:
            await asyncio.to_thread(self._delete_under, staged_prefix(namespace, uid))
        except Exception:  # an unreachable store: the resync's sweep deletes them later
            log.exception("deleting the staged data of %s/%s failed", namespace, uid)

    async def staged(self, namespaces: tuple[str | None, ...]) -> dict[tuple[str, str], list[str]] | None:
        """The staged keys by (namespace, uid). List this *before* the TrainingJobs a sweep keeps:
        a copy is written only after its job exists, so every copy listed here whose job is
        alive is in a later listing of the jobs. None if the store cannot be listed: the resync
        that calls this must still reconcile every job, and the next one sweeps."""
        if self.store is None:
            return {}
        store = self.store
        keys: list[str] = []
        try:
            for ns in namespaces:
                keys += await asyncio.to_thread(store.list, staged_prefix(ns) if ns else f"{STAGED_PREFIX}/")
        except Exception:
            log.exception("listing the staged data copies failed; no sweep in this resync")
            return None
        out: dict[tuple[str, str], list[str]] = {}
        for key in keys:
            owner = uid_of(key)
            if owner is not None:
                out.setdefault(owner, []).append(key)
        return out

    async def sweep(self, staged: dict[tuple[str, str], list[str]] | None, live: set[tuple[str, str]]) -> int:
        """Delete the copies of jobs not in `live` (deleted while no operator watched); how many.
        A store that fails is logged, not raised: the next resync sweeps again."""
        gone = [key for owner, keys in (staged or {}).items() if owner not in live for key in keys]
        if gone and self.store is not None:
            try:
                await asyncio.to_thread(self._delete, gone)
            except Exception:
                log.exception("deleting staged data copies of deleted TrainingJobs failed")
                return 0
            log.info("deleted %d staged data copies of deleted TrainingJobs", len(gone))
        return len(gone)

    def _delete_under(self, prefix: str) -> None:
        assert self.store is not None
        self._delete(self.store.list(prefix))

    def _delete(self, keys: list[str]) -> None:
        assert self.store is not None
        for key in keys:
            self.store.delete(key)
