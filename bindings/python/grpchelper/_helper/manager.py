"""grpc-helper's RpcManager: the base of a managed service's implementation.

A manager served by an RpcServer (see rpc_server.py) gets, before its `_load()` hook:
`logger` writing to the server's rolling logs (<logs>/<ClassName>/<ClassName>.log, and
root.log), `client` (the server's auto-client: a stub per served service, named as the
service descriptors), `folders` (the server's Folders) and `port` (the server's port).
"""

import json
import logging
import os
import socket
from abc import ABC, abstractmethod
from pathlib import Path
from threading import RLock


class RpcManager:
    """Shared interface for all RPC managers, helping to control the service lifecycle
    (grpc-helper's RpcManager).

    Attributes:
        lock: a reentrant lock, to protect the manager's own fields.
        logger: logging.getLogger(<class name>); once served, its records go to the
            server's rolling logs.
        client: the server's auto-client (set before `_load()`; None until then).
        folders: the server's Folders (set before `_load()`).

    Hooks (override them):
        _load(): called once every service is served, with `client` ready. An exception
            shuts the server down and is raised to the code that created it.
        _shutdown(): called when the server shuts down (calls may still be pending).
    """

    def __init__(self, config_name: str = None, config_validator=None):
        self.lock = RLock()
        self.client = None
        self.folders = None
        self.logger = logging.getLogger(type(self).__name__)
        self.config_name = config_name
        self.config_validator = config_validator

    def _load(self):
        """To be defined by sub-classes, if some specific operations have to be performed
        once all basic initializations are done."""

    def _shutdown(self):
        """To be defined by sub-classes, if some specific operations have to be performed
        before shutting down the process."""

    def _load_config(self, config_folder: Path) -> dict:
        """The JSON model persisted as `config_name` in config_folder ({} when there is
        none), checked by `config_validator(path, model)` when given. A file that is not
        JSON → RpcException ERROR_MODEL_INVALID."""
        if config_folder is None or self.config_name is None:
            return {}
        config_file = Path(config_folder) / self.config_name
        if not config_file.is_file():
            return {}
        with config_file.open("r") as f:
            try:
                model = json.load(f)
            except json.JSONDecodeError as e:
                from ..api import ResultCode
                from .errors import RpcException
                raise RpcException("Invalid config json file (bad json: %s): %s" % (e, config_file),
                                   ResultCode.ERROR_MODEL_INVALID)
        if self.config_validator is not None:
            self.config_validator(config_file, model)
        return model

    def _save_config(self, config: dict):
        """Persists the JSON model as `config_name` in the workspace (a warning when there
        is no workspace)."""
        folder = self.folders.workspace if self.folders is not None else None
        if folder is None:
            self.logger.warning("No workspace defined; skip config persistence")
            return
        folder.mkdir(parents=True, exist_ok=True)
        # Atomically: a temporary file in the same folder, then renamed over the old one.
        path = folder / self.config_name
        tmp = path.with_name(".%s.tmp-%d" % (path.name, os.getpid()))
        with tmp.open("w") as f:
            json.dump(config, f, indent=4)
        os.replace(tmp, path)


class RpcProxiedManager(RpcManager, ABC):
    """grpc-helper's RpcProxiedManager: the manager of services a main server proxies.

    At `_load()` it registers its server's `port` for `_proxied_services()` (version
    `_proxied_version()`) with the main server at rpc-main-host:rpc-main-port
    (srv.proxy_register, retried within rpc-client-timeout; a failure stops its server,
    which then fails to start with that RpcException), and keeps `proxy_client` (stubs
    srv, events and `_proxy_stubs()`, on the main server); at `_shutdown()` it forgets
    them (srv.proxy_forget, one try: a main server already gone does not hold the
    shutdown; a failure is logged). A subclass overriding `_load` or `_shutdown` calls
    super()'s.
    """

    def __init__(self, config_name: str = None, config_validator=None):
        super().__init__(config_name=config_name, config_validator=config_validator)
        self.proxy_client = None

    def _proxy_stubs(self) -> dict:
        """More stubs of proxy_client: {name: (GeneratedStub, api_version)}."""
        return {}

    @abstractmethod
    def _proxied_services(self) -> list:  # pragma: no cover
        """The names of the services the main server proxies to this one."""

    @abstractmethod
    def _proxied_version(self) -> str:  # pragma: no cover
        """The version the main server shows for them ("title:version")."""

    @property
    def _proxy_use_current_host(self) -> bool:
        """Register this host's address toward the main server instead of rpc-main-host
        (default False: backend and main server on one host)."""
        return False

    def _load(self):
        from ..api import EventApiVersion, EventServiceStub, ProxyRegisterRequest, ServerApiVersion
        from ..api.server_pb2_grpc import RpcServerServiceStub
        from .client import RpcClient
        from .config import RpcStaticConfig
        host, port = RpcStaticConfig.MAIN_HOST.str_val, RpcStaticConfig.MAIN_PORT.int_val
        stubs = {"srv": (RpcServerServiceStub, ServerApiVersion.SERVER_API_CURRENT),
                 "events": (EventServiceStub, EventApiVersion.EVENT_API_CURRENT)}
        stubs.update(self._proxy_stubs())
        candidate = RpcClient(host, port, stubs, timeout=RpcStaticConfig.CLIENT_TIMEOUT.float_val)
        self._main_server = (host, port)
        candidate.srv.proxy_register(ProxyRegisterRequest(
            names=self._proxied_services(), version=self._proxied_version(),
            host=_address_toward(host) if self._proxy_use_current_host else host, port=self.port))
        self.proxy_client = candidate

    def _shutdown(self):
        if self.proxy_client is None:
            return
        from ..api import Filter, ServerApiVersion
        from ..api.server_pb2_grpc import RpcServerServiceStub
        from .client import RpcClient
        self.proxy_client.close()
        self.proxy_client = None
        # One try (grpc-helper's retried for the client timeout: a main server already gone
        # held this one's shutdown that long).
        once = RpcClient(*self._main_server, {"srv": (RpcServerServiceStub, ServerApiVersion.SERVER_API_CURRENT)},
                         timeout=0)
        try:
            once.srv.proxy_forget(Filter(names=self._proxied_services()), timeout=10)
        except Exception as e:  # noqa: BLE001 - the server shuts down anyway
            self.logger.error("Cannot forget %s on the main server: %s" % (",".join(self._proxied_services()), e))
        finally:
            once.close()


def _address_toward(host: str) -> str:
    """This host's address on the route to `host` (nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))
        return s.getsockname()[0]


def ensure_manager_attributes(manager):
    """The attributes RpcManager.__init__ sets, on a manager whose __init__ did not call
    it (grpc-helper would fail later on such a manager; here it works)."""
    if not hasattr(manager, "lock"):
        manager.lock = RLock()
    if not hasattr(manager, "logger"):
        manager.logger = logging.getLogger(type(manager).__name__)
    for name in ("client", "folders", "config_name", "config_validator"):
        if not hasattr(manager, name):
            setattr(manager, name, None)


__all__ = ["RpcManager", "RpcProxiedManager"]
