"""Red team (issue 12): an export's status is written by the exporter pod in the tenant's namespace,
so its fileRef and exportId are not trusted: a download or the expiry sweep reaches only the
export's own object, exports/<namespace>/<export id>/<file>."""

from __future__ import annotations

import pytest

from agentcore.api.exports import ExportJob
from agentcore.exports.settings import key_from_ref, object_key

STORE = "s3://bucket/agentcore"
NS, ID = "tenant-a", "6f1c1d6e-0000-4000-8000-000000000001"


def test_the_exports_own_file_is_found():
    ref = f"{STORE}/{object_key(NS, ID, 'out.csv')}"
    assert key_from_ref(STORE, ref, NS, ID) == f"exports/{NS}/{ID}/out.csv"


@pytest.mark.parametrize(
    "key",
    [
        f"exports/tenant-b/{ID}/out.csv",  # another tenant's file
        f"exports/{NS}/6f1c1d6e-0000-4000-8000-000000000002/full.csv",  # another export of the tenant
        f"exports/{NS}/{ID}/../other/out.csv",  # out of its directory
        f"exports/{NS}/{ID}/",  # the directory itself
        f"exports/{NS}/{ID}/..",
        "datasets/tenant-a/job/training.json",  # not an export at all
    ],
)
def test_anything_else_is_not(key: str):
    assert key_from_ref(STORE, f"{STORE}/{key}", NS, ID) is None
    assert key_from_ref(STORE, f"s3://other-bucket/agentcore/{object_key(NS, ID, 'a.csv')}", NS, ID) is None


def test_the_export_id_comes_from_metadata_never_from_the_status():
    ej = ExportJob.model_validate(
        {
            "apiVersion": "training.agentcore.io/v1alpha1",
            "kind": "ExportJob",
            "metadata": {"name": "e", "namespace": NS, "uid": ID},
            "spec": {"exportType": "trajectories", "name": "e", "config": {"format": "csv"}},
            "status": {"exportId": "6f1c1d6e-0000-4000-8000-000000000002"},
        }
    )
    assert ej.export_id == ID
