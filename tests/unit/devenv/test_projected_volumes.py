"""The node agent's rule for projected token volumes it cannot mount: env paths are rewritten."""

from __future__ import annotations

from pathlib import Path

from agentcore.devenv.nodeagent import volumes


def _pod() -> dict:
    token = {"audience": "agentcore.io/ingest", "expirationSeconds": 600, "path": "token"}
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {
            "volumes": [
                {"name": "ingest", "projected": {"sources": [{"serviceAccountToken": token}]}},
                {"name": "scratch", "emptyDir": {}},
            ]
        },
    }


def test_sources_are_found_with_their_audience_and_lifetime() -> None:
    assert volumes.token_sources(_pod()) == [
        volumes.TokenSource("ingest", "token", "agentcore.io/ingest", 600)
    ]
    assert volumes.refresh_after(volumes.token_sources(_pod())) == 480


def test_env_under_a_mount_path_points_into_the_pod_dir(tmp_path: Path) -> None:
    container = {
        "volumeMounts": [
            {"name": "ingest", "mountPath": "/var/run/secrets/agentcore.io/ingest/", "readOnly": True},
            {"name": "scratch", "mountPath": "/scratch"},
        ]
    }
    env = {
        "TOKEN": "/var/run/secrets/agentcore.io/ingest/token",
        "DIR": "/var/run/secrets/agentcore.io/ingest",
        "SIMILAR": "/var/run/secrets/agentcore.io/ingester",
        "SCRATCH": "/scratch/x",
    }
    out = volumes.rewrite_mount_paths(env, _pod(), container, tmp_path)
    local = tmp_path / "volumes" / "ingest"
    assert out["TOKEN"] == f"{local}/token" and out["DIR"] == str(local)
    assert out["SIMILAR"] == env["SIMILAR"] and out["SCRATCH"] == "/scratch/x"  # not a token volume
