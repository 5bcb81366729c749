"""PostgreSQL and S3 fixtures are real servers reached over sockets."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.integration


async def test_postgres_over_asyncpg(postgres):
    engine = create_async_engine(postgres.dsn)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("create table if not exists probe (id int primary key, note text)"))
            await conn.execute(text("insert into probe values (1, 'hello') on conflict do nothing"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("select note from probe where id = 1"))).scalar_one() == "hello"
            version = (await conn.execute(text("show server_version"))).scalar_one()
            assert version.split(".")[0].isdigit()
    finally:
        await engine.dispose()


def test_postgres_rejects_wrong_password(postgres):
    import asyncio

    import asyncpg

    async def connect():
        await asyncpg.connect(
            host="127.0.0.1",
            port=postgres.port,
            user=postgres.user,
            password="wrong",
            database=postgres.database,
        )

    with pytest.raises(asyncpg.InvalidPasswordError):
        asyncio.run(connect())


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_s3_presigned_url_works_then_expires(s3):
    client = s3.client()
    bucket = f"probe-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"payload")
    assert client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"payload"

    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "a/b.txt"}, ExpiresIn=2
    )
    assert _get(url) == (200, b"payload")
    time.sleep(3.5)
    status, body = _get(url)
    assert status == 403
    assert b"expired" in body.lower()


def test_s3_rejects_bad_signature(s3):
    client = s3.client()
    bucket = f"sig-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60)
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert _get(tampered)[0] == 403
    assert _get(f"{s3.credentials.endpoint_url}/{bucket}/k")[0] == 403  # anonymous
