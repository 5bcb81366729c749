"""Privacy-aware exports (``docs/spec/exports-api.md``): ExportJob → export pod → file in object storage.

Pipeline: the REST API (``server/rest/exports.py``) or ``kubectl apply`` creates an ExportJob; the operator
(``controllers/exportjob``) queues it per namespace (at most 3 running, the rest Pending with
``positionInQueue``) and runs ``agentcore exporter`` (:mod:`.exporter`) as a batch/v1 Job. The pod
streams rows from PostgreSQL in batches (:mod:`.sql`, :mod:`.sources`), applies the privacy level
and redaction rule (:mod:`.redaction`, :mod:`.rules`), writes the format (:mod:`.writers`) to a temp
file, uploads it (multipart, Content-Disposition) and records ``status.output``. Memory is bounded
by the batch size, never by the row count. After ``expiresAt`` (``spec.retentionSeconds``, default
7 days) the operator deletes the file and the ExportJob.

Export types in this product (the spec's names; "nodes" are training jobs or checkpoints, "personas"
are the agents being trained, "telemetry" is the per-iteration training signal):

================== ============================================================================
``project_summary`` one row per TrainingJob of the namespace (the project): phase, progress,
                    cost and budget, latest metrics, checkpoints; ``include_telemetry`` adds
                    stored-trajectory statistics, ``include_reliability`` evaluation results,
                    ``include_personas`` the agent's training config, ``include_events`` the
                    latest condition.
``node_comparison`` one row per ``config.node_ids`` entry — a TrainingJob (name or uid) or a
                    checkpoint (id or ``job/id``) — with validation score, trajectory statistics
                    up to that iteration and over its last 10 iterations; all jobs if none given.
``telemetry_dump``  per-iteration metrics history from the trajectories table, aggregated in SQL
                    every ``telemetry_resolution`` iterations (default 1): count, reward mean/min/
                    max, success rate, advantage, execution time, errors.
``persona_catalog`` one row per agent id: its jobs, latest training config, trajectory statistics.
``reliability_report`` one row per TrainingJob: outcome and reason (BudgetExceeded...), trainer
                    state and message, retries (failed trainer pods), trajectory error rate,
                    evaluation against the baseline with its p-value and significance.
``audit_log``       API actions from the ``audit_log`` table: who did what, when, with what outcome.
``trajectories``    the trajectories themselves (query, steps, rewards, advantages...).
================== ============================================================================

Filters, applied in SQL: ``date_range`` (created_at; job creation for job tables), ``agent_ids``,
``job_ids`` (uid or name), ``min_confidence`` (minimum reward), ``success``, ``segments`` /
``regions`` (TrainingJobs labelled ``training.agentcore.io/segment`` / ``.../region``).

Privacy levels:

- ``full``: everything (admin role only).
- ``anonymized``: the redaction rule (default ``pii-standard``) applies by field path; PII ids not
  covered by the rule are hashed anyway (agent ids, and what is built from them: job names, node
  ids, audited resource names); free text (queries, steps, messages, error texts) is
  dropped unless the rule replaces it by a constant or a pseudonym. ``preserve_prefix`` is refused.
- ``aggregated``: group tables (telemetry buckets across all jobs for trajectories and telemetry,
  phases for jobs, outcomes for reliability, days for the audit log); groups of fewer than
  ``k_anonymity`` (at least 5) distinct subjects — agents, or actors for the audit log, not rows —
  are suppressed and counted in ``redaction_applied.rows_filtered``. ``persona_catalog`` and
  ``node_comparison`` (a row per agent or job) have no aggregated form and are refused.
- ``summary``: a handful of metrics (name, value), no identifiers.

Pseudonyms are HMAC-SHA256 (128-bit output) under the namespace's key in the Secret
``agentcore-export-key`` (:mod:`.keys`): stable within a tenant, unlinkable across tenants.
Custom redaction rules are ConfigMaps labelled ``training.agentcore.io/redaction-rule: "true"``
(:mod:`.rules`), so GitOps tools manage them like any other manifest.
"""
