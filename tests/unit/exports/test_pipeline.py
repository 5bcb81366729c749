"""The export pipeline on SQLite: every type at every level, filters in SQL, estimates, and leak
checks over every format."""

from __future__ import annotations

import secrets
import uuid

import pytest
from sqlalchemy import insert

from agentcore.api.exports import ExportFormat, ExportJobSpec, ExportType, PrivacyLevel
from agentcore.exports import pipeline
from agentcore.exports.redaction import Pseudonymizer
from agentcore.exports.rules import PII_STANDARD
from agentcore.exports.sources import SourceContext, SourceError
from agentcore.exports.writers import ExportTooLarge
from agentcore.storage.db import make_engine, session_factory
from agentcore.storage.migrate import upgrade
from agentcore.storage.tables import AuditEntry
from agentcore.storage.trajectories import TrajectoryRepository
from tests.exports_support import PII_AGENT, audit_rows, leaked, read_rows, trainingjob, trajectory_rows

NS = "team-a"
JOB1, JOB2 = str(uuid.uuid4()), str(uuid.uuid4())
KEY = secrets.token_bytes(32)
PER_SUBJECT = ("persona_catalog", "node_comparison")  # one row per agent or job


@pytest.fixture(scope="module")
async def engine(tmp_path_factory):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'x.db'}")
    await upgrade(engine)
    repo = TrajectoryRepository(session_factory(engine))
    await repo.add_batch(trajectory_rows(NS, JOB1, "job-one"))
    await repo.add_batch(trajectory_rows(NS, JOB2, "job-two", iterations=4, agent="agent-b"))
    await repo.add_batch(trajectory_rows("other-tenant", str(uuid.uuid4()), "theirs"))
    async with engine.begin() as conn:
        await conn.execute(insert(AuditEntry).values(audit_rows(NS)))
    yield engine
    await engine.dispose()


def context(engine, export_type, fmt="json", level="full", **config) -> SourceContext:
    spec = ExportJobSpec.model_validate(
        {"exportType": export_type, "config": {"format": fmt, "privacyLevel": level, **config}}
    )
    jobs = [
        trainingjob(NS, "job-one", JOB1),
        trainingjob(NS, "job-two", JOB2, phase="Failed", reason="BudgetExceeded", costUsd="10.00"),
    ]
    jobs[1]["spec"]["agentId"] = "agent-b"
    jobs[1]["metadata"]["labels"] = {}
    trainer = {"job-two": {"status": {"failed": 2}}}
    return SourceContext(NS, spec, engine, jobs, trainer)


async def export(ctx: SourceContext, tmp_path, rule=PII_STANDARD, key=KEY) -> tuple[bytes, pipeline.Written]:
    level = ctx.config.privacy_level
    prepared = await pipeline.prepare(ctx, "Test export", None if level == PrivacyLevel.FULL else rule, key)
    path = tmp_path / f"{uuid.uuid4().hex}.{ctx.config.format.value}"
    written = await pipeline.write(prepared, ctx.config.format, path)
    return path.read_bytes(), written


async def test_full_trajectories_stream_all_rows_of_the_tenant_only(engine, tmp_path):
    data, written = await export(context(engine, "trajectories", "json"), tmp_path)
    rows = read_rows("json", data)
    assert written.rows == len(rows) == 12 * 8 + 4 * 8
    assert {r["job_name"] for r in rows} == {"job-one", "job-two"}
    assert rows[0]["query"].startswith("I am") and isinstance(rows[0]["steps"], list)


@pytest.mark.parametrize(
    "config, expected",
    [
        ({"filters": {"agentIds": ["agent-b"]}}, 32),
        ({"filters": {"jobIds": ["job-one"]}}, 96),
        ({"filters": {"jobIds": [JOB2]}}, 32),
        ({"filters": {"success": True}}, None),
        ({"filters": {"minConfidence": 0.5}}, None),
        ({"filters": {"segments": ["early_adopters"]}}, 96),
        ({"dateRange": {"start": "2026-01-01T00:02:00Z", "end": "2026-01-01T00:03:59Z"}}, 32),
    ],
)
async def test_filters_apply(engine, tmp_path, config, expected):
    data, _ = await export(context(engine, "trajectories", "csv", **config), tmp_path)
    rows = read_rows("csv", data)
    if expected is not None:
        assert len(rows) == expected
    if "success" in config.get("filters", {}):
        assert rows and all(r["success"] == "true" for r in rows)
    if "minConfidence" in config.get("filters", {}):
        assert rows and all(float(r["reward"]) >= 0.5 for r in rows)


async def test_anonymized_trajectories_hash_agent_and_drop_free_text(engine, tmp_path):
    data, written = await export(context(engine, "trajectories", "parquet", "anonymized"), tmp_path)
    rows = read_rows("parquet", data)
    assert {"query", "steps"}.isdisjoint(rows[0])
    hasher = Pseudonymizer(KEY)
    assert {r["agent_id"] for r in rows} == {hasher(PII_AGENT), hasher("agent-b")}
    assert {"agent.id", "trajectory.query", "trajectory.steps", "trajectory.error"} <= set(
        written.fields_redacted
    )


async def test_telemetry_buckets_by_resolution(engine, tmp_path):
    data, _ = await export(context(engine, "telemetry_dump", "json", telemetryResolution=5), tmp_path)
    rows = [r for r in read_rows("json", data) if r["job_name"] == "job-one"]
    assert [(r["iteration_start"], r["iteration_end"], r["trajectories"]) for r in rows] == [
        (0, 4, 40),
        (5, 9, 40),
        (10, 11, 16),
    ]
    assert 0 <= rows[0]["success_rate"] <= 1 and rows[2]["errors"] == 2


@pytest.fixture(scope="module")
async def many_agents(tmp_path_factory):
    """Six agents with one job each; the last two stop after 6 iterations."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db6') / 'x.db'}")
    await upgrade(engine)
    repo = TrajectoryRepository(session_factory(engine))
    for i in range(6):
        rows = trajectory_rows(
            NS, str(uuid.uuid4()), f"job-{i}", iterations=12 if i < 4 else 6, agent=f"agent-{i}"
        )
        await repo.add_batch(rows)
    yield engine
    await engine.dispose()


async def test_aggregated_suppresses_groups_below_k_distinct_agents(many_agents, tmp_path):
    ctx = context(many_agents, "trajectories", "json", "aggregated", telemetryResolution=6, kAnonymity=5)
    data, written = await export(ctx, tmp_path)
    rows = read_rows("json", data)
    # Iterations 0-5: six agents; 6-11: four agents, below k=5.
    assert [(r["iteration_start"], r["agents"], r["trajectories"]) for r in rows] == [(0, 6, 6 * 6 * 8)]
    assert written.rows_filtered == 1
    assert not {"job_id", "job_name", "agent_id"} & set(rows[0])  # one row per group, not per job


@pytest.mark.parametrize(
    "export_type", ["trajectories", "telemetry_dump", "project_summary", "reliability_report", "audit_log"]
)
async def test_aggregated_counts_distinct_subjects_not_rows(engine, tmp_path, export_type):
    """Red team (issue 12): k counted rows, so 40 trajectories of one agent made a group of 40.
    Here two agents (and one audit actor) are below k=5 whatever the row counts."""
    data, written = await export(context(engine, export_type, "json", "aggregated"), tmp_path)
    assert read_rows("json", data) == [] and written.rows_filtered >= 1


@pytest.mark.parametrize("export_type", PER_SUBJECT)
async def test_per_subject_types_have_no_aggregated_form(engine, tmp_path, export_type):
    with pytest.raises(SourceError, match="no aggregated form"):
        await export(context(engine, export_type, "json", "aggregated"), tmp_path)


@pytest.mark.parametrize("export_type", [t.value for t in ExportType])
async def test_every_type_at_every_level(engine, tmp_path, export_type):
    for level in PrivacyLevel:
        if level == PrivacyLevel.AGGREGATED and export_type in PER_SUBJECT:
            continue  # rows of single agents or jobs: no aggregated form (the test above)
        data, written = await export(context(engine, export_type, "json", level.value), tmp_path)
        rows = read_rows("json", data)
        if level == PrivacyLevel.SUMMARY:
            assert rows and set(rows[0]) == {"metric", "value"}, export_type
        elif level == PrivacyLevel.AGGREGATED:
            # Two agents (one audit actor) in the tenant: every group is below k=5.
            assert rows == [] and written.rows_filtered >= 1
        else:
            assert rows, (export_type, level)


async def test_project_summary_columns_follow_the_include_flags(engine, tmp_path):
    ctx = context(
        engine,
        "project_summary",
        "json",
        includeTelemetry=True,
        includeReliability=True,
        includePersonas=True,
    )
    rows = read_rows("json", (await export(ctx, tmp_path))[0])
    one = next(r for r in rows if r["job_name"] == "job-one")
    assert one["cost_usd"] == "1.25" and one["trajectories_stored"] == 96 and one["p_value"] == 0.01
    assert one["learning_rate"] == 0.0001
    two = next(r for r in rows if r["job_name"] == "job-two")
    assert two["budget_exceeded"] is True


async def test_reliability_counts_retries_and_errors(engine, tmp_path):
    rows = read_rows("json", (await export(context(engine, "reliability_report", "json"), tmp_path))[0])
    two = next(r for r in rows if r["job_name"] == "job-two")
    assert two["retries"] == 2 and two["error_trajectories"] == 4 and two["phase"] == "Failed"


async def test_node_comparison_resolves_jobs_and_checkpoints(engine, tmp_path):
    ctx = context(engine, "node_comparison", "json", nodeIds=["job-one", "job-one/job-one-ckpt-6", JOB2])
    rows = read_rows("json", (await export(ctx, tmp_path))[0])
    assert [(r["node_id"], r["node_kind"], r["iteration"]) for r in rows] == [
        ("job-one", "job", 12),
        ("job-one/job-one-ckpt-6", "checkpoint", 6),
        (JOB2, "job", 12),
    ]
    assert rows[1]["trajectories"] == 7 * 8 and rows[1]["validation_score"] == 0.5
    with pytest.raises(SourceError, match="nope"):
        await export(context(engine, "node_comparison", "json", nodeIds=["nope"]), tmp_path)


async def test_too_large_is_refused_before_writing(engine, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "max_bytes", lambda fmt: 10_000)
    ctx = context(engine, "trajectories", "json")
    with pytest.raises(ExportTooLarge) as exc:
        await pipeline.prepare(ctx, "x", None, None)
    assert not exc.value.during and exc.value.size_bytes > 10_000
    assert exc.value.suggestion.startswith("Apply filters or reduce telemetry resolution")


def test_file_names_are_sanitised():
    assert pipeline.file_name("Weekly Report Export", ExportFormat.EXCEL) == "Weekly_Report_Export.xlsx"
    assert pipeline.file_name("../../etc/passwd", ExportFormat.CSV) == "etc_passwd.csv"
    assert pipeline.file_name("¡¡", ExportFormat.PDF) == "export.pdf"


@pytest.mark.parametrize("fmt", [f.value for f in ExportFormat])
@pytest.mark.parametrize("level", ["anonymized", "aggregated", "summary"])
async def test_no_planted_pii_leaves_protected_exports(engine, tmp_path, fmt, level):
    for export_type in ExportType:
        if level == "aggregated" and export_type.value in PER_SUBJECT:
            continue  # refused: no aggregated form
        data, _ = await export(context(engine, export_type.value, fmt, level, kAnonymity=5), tmp_path)
        assert leaked(fmt, data) == [], (export_type, fmt, level)


async def test_full_level_keeps_the_planted_values(engine, tmp_path):
    data, _ = await export(context(engine, "trajectories", "csv"), tmp_path)
    assert PII_AGENT in leaked("csv", data)  # the leak check itself would notice a leak


@pytest.mark.parametrize("fmt", ["excel", "pdf"])
async def test_report_details_do_not_echo_filter_values_below_full(engine, tmp_path, fmt):
    ctx = context(engine, "trajectories", fmt, "anonymized", filters={"agentIds": [PII_AGENT]})
    data, written = await export(ctx, tmp_path)
    assert written.rows == 96 and leaked(fmt, data) == []


def _plan_with_counted_pseudonyms(calls: list[int]):  # type: ignore[no-untyped-def]
    """Trajectory columns, anonymized: every id column pseudonymised through a counting hasher."""
    from agentcore.exports import redaction, sources

    real = redaction.Pseudonymizer(KEY)

    def counted(value: object) -> object:
        calls[0] += 1
        return real(value)

    plan = redaction.plan_redaction(sources.TRAJECTORY_COLUMNS, PrivacyLevel.ANONYMIZED, PII_STANDARD, KEY)
    plan._ops = [(i, None if fn is None else redaction.column_fn(counted)) for i, fn in plan._ops or []]
    return plan


async def _pdf_text(tmp_path, lazy: bool, calls: list[int]) -> str:
    from agentcore.exports import sources
    from agentcore.exports.schema import ChartSpec, Dataset
    from agentcore.exports.writers import ReportInfo
    from agentcore.exports.writers.pdf import PdfWriter
    from tests.exports_support import trajectory_rows as rows_of

    source = rows_of(NS, JOB1, "job-one", iterations=30)  # 240 rows
    rows = [
        tuple({**r, "trajectory_id": r["id"]}.get(c.name) for c in sources.TRAJECTORY_COLUMNS) for r in source
    ]

    async def batches():  # type: ignore[no-untyped-def]
        for start in range(0, len(rows), 40):  # several batches, the table (100 rows) spans three
            yield rows[start : start + 40]

    chart = ChartSpec("Reward per iteration", "iteration", "reward")
    dataset = Dataset("Trajectories", sources.TRAJECTORY_COLUMNS, batches(), chart)
    plan = _plan_with_counted_pseudonyms(calls)
    prepared = pipeline.Prepared(dataset, plan, ReportInfo("T", [], chart), None)
    original = PdfWriter.read_columns
    if not lazy:
        PdfWriter.read_columns = lambda self: None  # type: ignore[method-assign]
    try:
        path = tmp_path / f"{lazy}.pdf"
        await pipeline.write(prepared, ExportFormat.PDF, path)
    finally:
        PdfWriter.read_columns = original  # type: ignore[method-assign]
    import pypdf

    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
    return "\n".join(line for line in text.splitlines() if not line.startswith("Generated"))


async def test_the_pdf_report_redacts_only_what_it_prints_and_reads_the_same(tmp_path):
    """The report prints the first 100 rows and computes statistics and the chart over all: past
    the table, the pseudonyms of columns it never reads are not computed, and nothing changes."""
    eager_calls, lazy_calls = [0], [0]
    eager = await _pdf_text(tmp_path, lazy=False, calls=eager_calls)
    lazy = await _pdf_text(tmp_path, lazy=True, calls=lazy_calls)
    assert lazy == eager and "First 100 of 240 rows" in eager
    assert 0 < lazy_calls[0] < eager_calls[0]
