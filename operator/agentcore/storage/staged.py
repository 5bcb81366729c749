"""Training data the operator copies out of a Secret for the trainer (``secretKeyRef`` sources).

The API server faces tenants and may not read Secrets; the operator may, by name, once it has
checked that the Secret is labelled for TrainingJobs. So before it creates a job's trainer, the
operator copies the key into the platform store under the job's uid, and the ingestion endpoint
serves the trainer that copy. The prefix is outside every one a tenant or a trainer can name (a
data ``uri`` must lie under ``datasets/<namespace>/``, a trainer's objects under its checkpoint
prefix), so the copy is no more readable than the Secret was. It is a snapshot: the run and its
resumes train on the data as it was when the job started. The operator deletes it with the job.
"""

from __future__ import annotations

from typing import Literal

STAGED_PREFIX = "staged-data"
DatasetKind = Literal["training", "evaluation"]


def staged_prefix(namespace: str, uid: str | None = None) -> str:
    """Every staged object of a namespace, or of one job (by uid: a recreated name is new data)."""
    return f"{STAGED_PREFIX}/{namespace}/" + (f"{uid}/" if uid else "")


def staged_key(namespace: str, uid: str, kind: DatasetKind) -> str:
    return f"{staged_prefix(namespace, uid)}{kind}.json"


def uid_of(key: str) -> tuple[str, str] | None:
    """(namespace, uid) of a staged key, None for anything else."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != STAGED_PREFIX:
        return None
    return parts[1], parts[2]
