"""Labels and annotations that the operator, the API server and the export pods put on objects.

One place for every key, so a selector in one component and the label written by another cannot
drift apart. Keys of our own group are ``training.agentcore.io/<name>``; the recommended
``app.kubernetes.io/*`` labels mark who manages an object.
"""

from __future__ import annotations

from agentcore.api.common import GROUP

# --- app.kubernetes.io (recommended labels) -----------------------------------------------------
MANAGED_BY = "app.kubernetes.io/managed-by"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
OPERATOR_NAME = "agentcore-operator"  # value of MANAGED_BY on the operator's children
API_SERVER_NAME = "agentcore-api"  # value of MANAGED_BY on resources the API server creates
PRODUCT = "agentcore"  # value of PART_OF

# --- TrainingJob and its children ----------------------------------------------------------------
TRAININGJOB = f"{GROUP}/trainingjob"  # on the trainer Job and pods: the TrainingJob's name
JOB_ID = f"{GROUP}/job-id"  # on the trainer Job and pods: the TrainingJob's uid
AGENT_ID = f"{GROUP}/agent-id"  # on TrainingJobs created by the API server
SEGMENT = f"{GROUP}/segment"  # optional, set by users: the export filter `segments`
REGION = f"{GROUP}/region"  # optional, set by users: the export filter `regions`
JOB_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"  # Indexed Job pods: the index
KUEUE_QUEUE_NAME = "kueue.x-k8s.io/queue-name"  # Kueue admits the Job (it starts suspended)
# On a Secret, set by its owner to "true": TrainingJobs of the namespace may name it (a data
# source's secretKeyRef, a webhook's secretRef). Without it a job author could have the trainer
# read, or the operator sign with, any Secret of the namespace (e.g. the pseudonym key).
USABLE_BY_TRAININGJOBS = f"{GROUP}/usable-by-trainingjobs"
USABLE_VALUE = "true"

# --- ExportJob and its children ------------------------------------------------------------------
EXPORTJOB = f"{GROUP}/exportjob"
EXPORT_ID = f"{GROUP}/export-id"
# On the exporter's objects in the platform namespace: which ExportJob they belong to (no owner
# reference can cross namespaces, so the operator deletes them by these).
EXPORTJOB_NAMESPACE = f"{GROUP}/exportjob-namespace"
EXPORTJOB_UID = f"{GROUP}/exportjob-uid"
REDACTION_RULE = f"{GROUP}/redaction-rule"  # ConfigMaps holding a custom redaction rule
KEY_COMPONENT = f"{GROUP}/component"  # on the per-namespace pseudonym key Secret
KEY_DESCRIPTION = f"{GROUP}/description"

# --- annotations -----------------------------------------------------------------------------------
CREATED_BY = f"{GROUP}/created-by"  # the API caller (token sub) that created the resource
# On full ExportJobs the API server created: its HMAC over what it approved (exports/approval.py).
FULL_EXPORT_APPROVAL = f"{GROUP}/full-export-approval"
ESTIMATED_SECONDS = f"{GROUP}/estimated-duration-seconds"  # ExportJob: the REST API's estimate
KOPF_PREFIX = GROUP  # kopf's own progress and diff-base annotations
