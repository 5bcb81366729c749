"""Local PostgreSQL (Debian packages) and S3 (MinIO) servers on loopback, for tests and for
`agentcore dev --postgres/--s3`. Each is a child process that dies with its parent."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from agentcore.devenv.binaries import minio_binary
from agentcore.devenv.procs import ManagedProcess, free_port, wait_until


def _pg_bindir() -> Path:
    explicit = os.environ.get("AGENTCORE_PG_BINDIR")
    if explicit:
        return Path(explicit)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found: `apt-get install postgresql` "
            "(or set AGENTCORE_PG_BINDIR to the directory holding initdb and postgres)"
        )
    return Path(candidates[-1]).parent


def _version_key(path: str) -> int:
    parts = Path(path).parts
    return int(parts[-3]) if parts[-3].isdigit() else 0


def _unprivileged_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root; as root we run it as the `postgres` (else `nobody`) user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class _Service:
    def __init__(self, state_dir: Path | None) -> None:
        self._owns_dir = state_dir is None
        self.dir = Path(state_dir or tempfile.mkdtemp(prefix=f"agentcore-{self.kind}-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: ManagedProcess | None = None

    kind = "service"

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(grace=15)
            self.proc = None
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class PostgresServer(_Service):
    kind = "postgres"

    def __init__(
        self, state_dir: Path | None = None, port: int | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(state_dir)
        self.port = port or free_port()
        # Another address than loopback (e.g. the real node's IP, for pods) is listened on too.
        self.host = host
        self.user = "agentcore"
        self.password = secrets.token_urlsafe(16)
        self.database = "agentcore"

    @property
    def dsn(self) -> str:
        """SQLAlchemy async URL (asyncpg driver)."""
        return f"postgresql+asyncpg://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def __enter__(self) -> PostgresServer:
        return self.start()

    def start(self) -> PostgresServer:
        bindir = _pg_bindir()
        data = self.dir / "data"
        runas = _unprivileged_user()
        password_file = self.dir / "pwfile"
        fresh = not (data / "PG_VERSION").exists()
        if fresh:
            password_file.write_text(self.password + "\n")
            self._chown_tree(runas)
            self._run_as(
                runas,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.user,
                    "--auth=scram-sha-256",
                    f"--pwfile={password_file}",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            )
            password_file.unlink()
            (self.dir / "password").write_text(self.password)
            if self.host != "127.0.0.1":  # initdb trusts loopback only; pods connect from their IPs
                with (data / "pg_hba.conf").open("a") as hba:
                    hba.write("host all all 0.0.0.0/0 scram-sha-256\n")
        else:
            self.password = (self.dir / "password").read_text().strip()
        argv = [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-h",
            ",".join(dict.fromkeys(("127.0.0.1", self.host))),
            "-k",
            str(self.dir),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ]
        self.proc = ManagedProcess("postgres", _with_user(runas, argv), self.dir / "postgres.log")
        wait_until(self._accepts, 60, "PostgreSQL to accept connections", self.proc)
        if fresh:
            self._create_database(bindir, runas)
        return self

    def _accepts(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        return self._psql("select 1", "postgres").returncode == 0

    def _create_database(self, bindir: Path, runas: pwd.struct_passwd | None) -> None:
        proc = self._psql(f'create database "{self.database}"', "postgres")
        if proc.returncode != 0 and "already exists" not in proc.stderr:
            raise RuntimeError(f"could not create database: {proc.stderr}")

    def _psql(self, sql: str, database: str) -> subprocess.CompletedProcess[str]:
        psql = shutil.which("psql") or str(_pg_bindir() / "psql")
        env = {**os.environ, "PGPASSWORD": self.password}
        return subprocess.run(
            [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database, "-c", sql],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )

    def _chown_tree(self, runas: pwd.struct_passwd | None) -> None:
        if runas is None:
            return
        for path in [self.dir, *self.dir.rglob("*")]:
            os.chown(path, runas.pw_uid, runas.pw_gid)

    def _run_as(self, runas: pwd.struct_passwd | None, argv: list[str]) -> None:
        proc = subprocess.run(_with_user(runas, argv), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {proc.stderr or proc.stdout}")


def _with_user(runas: pwd.struct_passwd | None, argv: list[str]) -> list[str]:
    if runas is None:
        return argv
    setpriv = shutil.which("setpriv")
    if not setpriv:
        raise RuntimeError("running as root needs `setpriv` (util-linux) to drop privileges for PostgreSQL")
    return [setpriv, f"--reuid={runas.pw_uid}", f"--regid={runas.pw_gid}", "--clear-groups", *argv]


@dataclass
class S3Credentials:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    extra: dict[str, Any] = field(default_factory=dict)


class MinioServer(_Service):
    """MinIO: enforces SigV4 signatures and presigned-URL expiry (moto's server does not)."""

    kind = "minio"

    def __init__(
        self, state_dir: Path | None = None, port: int | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(state_dir)
        self.port = port or free_port()
        self.host = host  # where it listens, and the endpoint in presigned URLs
        self.credentials = S3Credentials(
            endpoint_url=f"http://{host}:{self.port}",
            access_key="agentcore-" + secrets.token_hex(4),
            secret_key=secrets.token_urlsafe(24),
        )

    def __enter__(self) -> MinioServer:
        return self.start()

    def start(self) -> MinioServer:
        creds_file = self.dir / "credentials"
        if creds_file.exists():
            access, secret = creds_file.read_text().split("\n")[:2]
            self.credentials.access_key, self.credentials.secret_key = access, secret
        else:
            creds_file.write_text(f"{self.credentials.access_key}\n{self.credentials.secret_key}\n")
            creds_file.chmod(0o600)
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.credentials.access_key,
            "MINIO_ROOT_PASSWORD": self.credentials.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_CALLHOME_ENABLE": "off",
        }
        argv = [
            str(minio_binary()),
            "server",
            str(self.dir / "data"),
            "--quiet",
            "--address",
            f"{self.host}:{self.port}",
            "--console-address",
            f"127.0.0.1:{free_port()}",
        ]
        self.proc = ManagedProcess("minio", argv, self.dir / "minio.log", env=env)
        health = f"{self.credentials.endpoint_url}/minio/health/live"
        wait_until(lambda: _http_ok(health), 60, "MinIO health", self.proc)
        return self

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.credentials.endpoint_url,
            aws_access_key_id=self.credentials.access_key,
            aws_secret_access_key=self.credentials.secret_key,
            region_name=self.credentials.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)
