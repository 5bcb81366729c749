"""Connection settings for the Kubernetes API, loaded by kubernetes-asyncio's own loaders.

The order is the seam the local node agent relies on to hand each pod its own credentials: an
explicit kubeconfig, else every file listed in $KUBECONFIG (merged as kubectl merges them), else
the in-cluster service account, else ~/.kube/config. :func:`load` only reads files; credentials that
need a subprocess or a network call (exec plugins, oidc, gcp) are obtained by
:meth:`KubeConfig.authenticate`, which the client awaits before its first request.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader
from kubernetes_asyncio.config.kube_config import (
    ConfigNode,
    KubeConfigLoader,
    KubeConfigMerger,
)

if TYPE_CHECKING:
    import kopf

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Refresh exec credentials this long before they expire, so no request carries a dying token.
EXPIRY_SKEW = dt.timedelta(minutes=1)
# A kubeconfig tokenFile is re-read this often: projected service-account tokens rotate.
TOKEN_FILE_REREAD_SECONDS = 60.0
# The old client allowed 50 parallel connections; the library's default is 100.
CONNECTION_POOL = 50


class ConfigError(RuntimeError):
    pass


class KubeConfig:
    """The library's :class:`Configuration` plus the loader that can refresh its credentials.

    ``server`` and ``namespace`` are known after :func:`load`; the TLS files and the token once
    :meth:`authenticate` has run (``load`` runs it itself when called outside an event loop).
    """

    def __init__(
        self, configuration: Configuration, namespace: str, loader: KubeConfigLoader | None = None
    ) -> None:
        self.configuration = configuration
        self.namespace = namespace
        self._loader = loader
        self._lock = asyncio.Lock()
        self._loaded = False
        self._token_file: Path | None = None
        self._token_read_at = 0.0

    # -- what consumers read (the node agent, kopf login, the client) ------------------------
    @property
    def server(self) -> str:
        return str(self.configuration.host)

    @property
    def ca_file(self) -> str | None:
        return self.configuration.ssl_ca_cert

    @property
    def cert_file(self) -> str | None:
        return self.configuration.cert_file

    @property
    def key_file(self) -> str | None:
        return self.configuration.key_file

    @property
    def insecure(self) -> bool:
        return not self.configuration.verify_ssl

    @property
    def expiration(self) -> dt.datetime | None:
        """When the exec plugin's credential expires (None if it did not say, or no plugin)."""
        return getattr(self._loader, "exec_plugin_expiry", None)

    def bearer_token(self) -> str | None:
        """The current token without its scheme (no refresh: await :meth:`authorization` for that)."""
        value = self.configuration.api_key.get("BearerToken")
        if not value:
            return None
        return str(value).partition(" ")[2] or None

    async def authorization(self) -> str | None:
        """The Authorization header value ("Bearer …", "Basic …"), refreshed if due."""
        await self.authenticate()
        value = await self.configuration.get_api_key_with_prefix("BearerToken")
        return str(value) if value else None

    # -- credentials -----------------------------------------------------------------------
    async def authenticate(self) -> None:
        """Obtain credentials once; the refresh hook installed here keeps them fresh."""
        if self._loader is None or self._loaded:
            return
        async with self._lock:
            if not self._loaded:
                await self._authenticate_now()

    async def _authenticate_now(self) -> None:
        assert self._loader is not None
        try:
            await self._loader.load_and_set(self.configuration)
        except ConfigException as exc:
            raise ConfigError(f"kubeconfig credentials: {exc}") from exc
        self._loaded = True
        if token := self.configuration.api_key.get("BearerToken"):
            # The library keeps a tokenFile's trailing newline, which aiohttp refuses in a header.
            self.configuration.api_key["BearerToken"] = str(token).strip()
        user = _active_user(self._loader)
        if user is None:
            return
        if "exec" in user:
            self.configuration.refresh_api_key_hook = self._refresh_exec
        elif "tokenFile" in user and "token" not in user:
            self._token_file = _resolve(user, "tokenFile")
            self._token_read_at = time.monotonic()
            self.configuration.refresh_api_key_hook = self._reread_token_file

    async def _refresh_exec(self, configuration: Configuration) -> None:
        # The library re-runs the plugin on every call unless it reported an expiry: only call it
        # when one is known and near. A plugin without expiry keeps its first token (as client-go).
        if not self._due(self.expiration):
            return
        async with self._lock:
            if self._due(self.expiration):
                await self._rerun_plugin()

    async def renew(self) -> bool:
        """After a 401: run the exec plugin again (as client-go does); False if there is none or
        it returned the same credential, so the caller does not retry in vain."""
        if self._loader is None or "exec" not in (_active_user(self._loader) or {}):
            return False
        async with self._lock:
            before = self.configuration.api_key.get("BearerToken")
            await self._rerun_plugin()
            return bool(self.configuration.api_key.get("BearerToken") != before)

    async def _rerun_plugin(self) -> None:
        # The caller holds the lock. Without the expiry the library cannot return its cached token.
        assert self._loader is not None
        with contextlib.suppress(AttributeError):
            del self._loader.exec_plugin_expiry
        await self._loader.load_from_exec_plugin()
        self.configuration.api_key["BearerToken"] = self._loader.token

    @staticmethod
    def _due(expiry: dt.datetime | None) -> bool:
        if expiry is None:
            return False
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=dt.UTC)
        return expiry - EXPIRY_SKEW <= dt.datetime.now(dt.UTC)

    def _reread_token_file(self, configuration: Configuration) -> None:
        # A tiny local file once a minute, as the library's in-cluster loader does.
        if self._token_file is None or time.monotonic() - self._token_read_at < TOKEN_FILE_REREAD_SECONDS:
            return
        self._token_read_at = time.monotonic()
        if token := self._token_file.read_text().strip():
            configuration.api_key["BearerToken"] = f"Bearer {token}"


def own_namespace(configured: str = "") -> str:
    """The configured namespace, else the pod's own (in-cluster), else ``default``."""
    if configured:
        return configured
    try:
        return (SERVICE_ACCOUNT_DIR / "namespace").read_text().strip() or "default"
    except OSError:
        return "default"


def platform_namespace() -> str:
    """Where export pods and their credentials live (AGENTCORE_PLATFORM_NAMESPACE, else the pod's
    own): read by the API server; the operator has it as OperatorConfig.platform_namespace."""
    return own_namespace(os.environ.get("AGENTCORE_PLATFORM_NAMESPACE", ""))


def load(kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None) -> KubeConfig:
    """Pick the configuration source (see the module docstring) and load it."""
    paths = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG")
    if paths:
        config = from_kubeconfig(paths, context)
    elif (SERVICE_ACCOUNT_DIR / "token").exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return in_cluster()
    elif (default := Path.home() / ".kube" / "config").exists():
        config = from_kubeconfig(str(default), context)
    else:
        raise ConfigError("no Kubernetes configuration: set KUBECONFIG, pass --kubeconfig, run in a cluster")
    _authenticate_if_no_loop(config)
    return config


def _authenticate_if_no_loop(config: KubeConfig) -> None:
    # Sync callers in worker threads (kopf's sync login handler, asyncio.to_thread) get complete
    # settings at once; inside an event loop the exec plugin must not block, so it waits for first use.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(config._authenticate_now())


def in_cluster() -> KubeConfig:
    """The pod's service account; the library re-reads the rotating token file every minute."""
    configuration = Configuration()
    try:
        InClusterConfigLoader(
            token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
            cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        ).load_and_set(configuration)
    except ConfigException as exc:
        raise ConfigError(f"in-cluster config: {exc}") from exc
    configuration.connection_pool_maxsize = CONNECTION_POOL
    namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.exists() else "default"
    return KubeConfig(configuration, namespace)


def from_kubeconfig(paths: str, context: str | None = None) -> KubeConfig:
    """One kubeconfig path or several joined by os.pathsep, merged as kubectl does (first wins)."""
    try:
        merged = _merge(paths)
        loader = KubeConfigLoader(config_dict=merged, active_context=context, config_base_path=None)
        active: dict[str, Any] = loader.current_context or {}
        cluster = merged["clusters"].get_with_name(active["context"]["cluster"])
        server = str(cluster["cluster"]["server"]) if cluster is not None else ""
    except (OSError, ValueError, KeyError, yaml.YAMLError, ConfigException) as exc:
        raise ConfigError(f"cannot load kubeconfig {paths}: {exc}") from exc
    configuration = Configuration()
    # The library fills host in while authenticating; callers may read .server before that.
    configuration.host = server.rstrip("/")
    configuration.connection_pool_maxsize = CONNECTION_POOL
    return KubeConfig(configuration, active["context"].get("namespace") or "default", loader)


def _merge(paths: str) -> ConfigNode:
    merger = KubeConfigMerger(paths)
    if merger.config is None:
        raise ConfigError(f"no kubeconfig file found in {paths!r}")
    # The library lets the last file's current-context win; kubectl (and the old loader) the first.
    for path in merger.paths:
        if current := (merger.config_files[path] or {}).get("current-context"):
            merger.config.value["current-context"] = current
            break
    return merger.config


def _active_user(loader: KubeConfigLoader) -> ConfigNode | None:
    return loader._user  # the library exposes the active user's section only here


def _resolve(section: ConfigNode, key: str) -> Path:
    # In a merged kubeconfig a relative path is relative to the file that defined it (node.path).
    path = Path(str(section[key])).expanduser()
    return path if path.is_absolute() or not section.path else Path(section.path).parent / path


async def connection_info(
    kubeconfig: str | os.PathLike[str] | None = None, context: str | None = None
) -> kopf.ConnectionInfo:
    """kopf's login from the same source and credentials (exec tokens with their expiry) as ours."""
    import kopf  # lazily: the trainer, node agent and API server never log in through kopf

    config = await asyncio.to_thread(load, kubeconfig, context)
    scheme, _, token = (await config.authorization() or "").partition(" ")
    return kopf.ConnectionInfo(
        server=config.server,
        ca_path=config.ca_file,
        insecure=config.insecure,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        scheme=scheme or None,
        token=token or None,
        default_namespace=config.namespace,
        expiration=config.expiration,
        proxy_url=config.configuration.proxy,
    )
