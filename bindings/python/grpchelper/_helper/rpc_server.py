"""grpc-helper's RpcServer and RpcServiceDescriptor over gh_rpc_server.

The library runs the server: the config set, the rolling logs, the built-in services
(srv, config, log), API version checks, error results, pending calls, the managers'
lifecycle and shutdown. This module builds the server from the services' descriptions
(rpc_service.py: gh_rpc_service_*) and gives Python views of its config set, logs and
auto-client.
"""

import contextlib
import logging
import sys
import threading
import time
import traceback
import weakref
from ctypes import byref, c_char_p, c_void_p

from .._native import ffi
from .._native.callbacks import registry
from .._native.convert import message_call, text
from .._native.handle import NativeHandle
from .._grpc import health, reflection
from ..api import (ConfigApiVersion, ConfigServiceStub, EventApiVersion, EventServiceStub,
                   Filter, LoggerApiVersion, LoggerServiceStub, MultiServiceInfo, ResultCode,
                   ResultStatus, RpcServerServiceStub, ServerApiVersion)
from .client import RpcClient, describe_stub
from .config import RpcStaticConfig
from .config_set import ConfigSet, _cli_strings, _expand
from .errors import RpcException
from .folders import Folders
from .logs import RpcLogs, use_python_levels
from .manager import RpcManager, ensure_manager_attributes
from .rpc_service import (MANAGER_KIND, METHOD_KIND, RpcServiceDescriptor, _Hooks, _Method,
                          _NO_FREE, _NO_HANDLER, _NO_LOAD, _NO_SHUTDOWN, _c_text,
                          _cardinality, _handler_thunk, _load_thunk, _shutdown_thunk, _tls,
                          api_versions, discover_service, manager_method, module_version)

_LOGGER = logging.getLogger("grpchelper")


# The debug dump's text function of a server is a registry entry of this kind (the
# user_data of gh_rpc_server_set_dump_fn), released when the server is freed.
DUMP_KIND = "rpc-dump"


def python_stacks():
    """Every Python thread's stack, as grpc-helper's dump (faulthandler) shows them."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = ["Python threads:"]
    for ident, frame in sys._current_frames().items():
        out.append('  Thread 0x%016x "%s" (most recent call last):' % (ident, names.get(ident, "?")))
        out.extend("    " + line for entry in traceback.format_stack(frame)
                   for line in entry.rstrip("\n").split("\n"))
    return "\n".join(out) + "\n"


@registry.entry_point(ffi.GH_RPC_DUMP_FN)
def _dump_thunk(key):
    # On the library's signal thread. The text is handed over to the library, which
    # releases it: memory of its own, from gh_strdup (NULL on failure: no Python text).
    text_of = registry.get(key)
    if text_of is None:  # pragma: no cover - the server owns its entry
        return None
    return ffi.gh_strdup(_c_text(text_of()))


# --- the Python side of one native server ---------------------------------------------

def _release_native(native):
    """Finalizer of an RpcServer: detaches the loggers, then gives the native server up
    (shutting it down first if it runs). On a live interpreter it waits for nothing (the
    collecting thread may be one of its handlers): gh_rpc_server_release frees the server
    on a library thread once its shutdown has finished. At exit at once (gh_rpc_server_free)."""
    native.close(wait=not threading.main_thread().is_alive())


class _Native:
    """What the handlers, the hooks and the RpcServer share (never the RpcServer itself,
    so that dropping it frees the native server)."""

    def __init__(self, folders, statics, users, stubs_map, loggers):
        self.folders = folders
        self.statics = statics
        self.users = users
        self.stubs_map = stubs_map
        self.loggers = loggers          # logger names to attach to the server's logs
        self.lock = threading.Lock()
        self.handle = None              # NativeHandle of the gh_rpc_server once known
        self.owned = False              # gh_rpc_server_new returned it: ours to free
        self.releasing = False          # freed by gh_rpc_server_release (close(wait=False))
        self.keys = []                  # its registry entries (released when it is freed)
        self.port = None
        # RpcLogs view of gh_rpc_server_logs, its loggers configured before the library
        # makes the logs: the server's first records (registrations, start) reach them.
        self.logs = RpcLogs._pending_view()
        self.logs.logger("")                        # the root logger: root.log
        self.logger = self.logs.logger("RpcServer")
        for name in self.loggers:
            self.logs.logger(name)
        self.config = None              # ConfigSet view of gh_rpc_server_config
        self.load_error = None

    def _free(self, ptr):
        if self.owned:
            if self.releasing:
                ffi.gh_rpc_server_release(ptr)
            else:
                ffi.gh_rpc_server_free(ptr)

    def attach(self, ptr):
        """Called with the native server by the first load hook, or once
        gh_rpc_server_new returned it: binds the view of its logs (the root, "RpcServer"
        and managers' loggers are on it), so that `_load` already logs to its file."""
        with self.lock:
            if self.handle is not None:
                return
            logs = ffi.gh_rpc_server_logs(ptr)
            if not logs:
                raise RpcException("the server has no logs (gh_rpc_server_logs gave NULL)",
                                   ResultCode.ERROR_STATE_UNEXPECTED)
            # The server's handle; the views of its logs, config set and auto-client are
            # its children (borrowed: freed with it).
            handle = NativeHandle("rpc_server", ptr, self._free, what="RpcServer")
            self.port = ffi.gh_rpc_server_port(ptr)
            self.logs._bind(NativeHandle(None, logs, what="RpcServer logs", parent=handle))
            self.handle = handle

    def view_config(self):
        """The ConfigSet view (once gh_rpc_server_new has returned the server)."""
        with self.handle.use() as ptr:
            config = ffi.gh_rpc_server_config(ptr)
        if not config:
            raise RpcException("the server has no config set", ResultCode.ERROR_STATE_UNEXPECTED)
        self.config = ConfigSet._view(NativeHandle(None, config, what="RpcServer config",
                                                   parent=self.handle),
                                      self.folders, self.statics, self.users)

    def record_load_error(self, e):
        with self.lock:
            if self.load_error is None:
                self.load_error = e

    def detach_logs(self):
        if self.logs is not None:
            self.logs.close()

    def close(self, wait=True):
        """Detaches the loggers, then frees the native server once (if it is ours).

        wait=True: once the calls using its handles have returned, with
        gh_rpc_server_free (not from its handlers). wait=False: waits for nothing, from any
        thread (its handlers, a finalizer): the handles stop lending and the last call
        using one hands the server to gh_rpc_server_release, which returns at once and
        frees it on a library thread once its shutdown has finished."""
        if not wait:
            self.releasing = True
            if self.owned:
                registry.await_at_exit(self.keys)   # the exit waits for the free
            if self.logs is not None:
                self.logs._close_nowait()
            if self.handle is not None:
                self.handle.close(False)       # with its children: config, logs, auto-client
            return
        self.detach_logs()
        if self.config is not None:
            self.config.close()
        if self.handle is not None:
            self.handle.close()


_BUILTIN_STUBS = {
    "srv": (RpcServerServiceStub, ServerApiVersion),
    "config": (ConfigServiceStub, ConfigApiVersion),
    "log": (LoggerServiceStub, LoggerApiVersion),
}


def _array(ctype, values):
    return (ctype * len(values))(*values)


def _with_static_config(candidates):
    """static_items with RpcStaticConfig: its shared items are the server's built-in ones
    (the library uses a given rpc-* item instead of its own), so that, as in grpc-helper,
    `RpcStaticConfig.X` follows the last server's -c, config files and environment."""
    return list(candidates or ()) + [RpcStaticConfig]


# --- RpcServer -----------------------------------------------------------------------

class RpcServer:
    """A managed gRPC server (grpc-helper's RpcServer), serving the built-in services
    srv, config and log, and the services of `descriptors`.

    Constructor arguments:
        port: the TCP port to listen on (0: a free one, see `port`).
        descriptors: a list of RpcServiceDescriptor.
        folders: a Folders (None: no folders).
        cli_config: dict name → value of config item defaults (the command line's -c).
        static_items, user_items: lists of Config objects and ConfigHolder classes.
        with_events: also serve the events service (`events`: listen, send, interrupt,
            inspect; queues persisted in the workspace's queues.json).
        with_debug_signal: SIGUSR2 writes RpcServerDump-YYYYMMDDhhmmss.txt (threads
            and pending calls) in the logs folder.

    Once built, it serves on the library's worker pool (rpc-max-workers threads) and
    every manager's `_load()` has run with its `client` (auto-client), `logger`,
    `folders` and `port` set. Errors: RpcException (a busy port → ERROR_PORT_BUSY; the
    config set's errors); a manager's `_load()` exception is raised as it is, after the
    server has shut down.
    """

    def __init__(self, port: int, descriptors: list, folders: Folders = None,
                 cli_config: dict = None, static_items: list = None, user_items: list = None,
                 with_events: bool = False, with_debug_signal: bool = True):
        descriptors = list(descriptors or ())
        for d in descriptors:
            if not isinstance(d, RpcServiceDescriptor):
                raise TypeError("descriptors holds RpcServiceDescriptor objects, not %r" % (d,))
            if d.manager is None and not d.is_proxy:
                raise RpcException("descriptor %r has no manager" % d.name,
                                   ResultCode.ERROR_PARAM_MISSING)
        if folders is None:
            folders = Folders()
        elif not isinstance(folders, Folders):
            raise TypeError("folders must be a grpchelper.Folders, not %r" % (folders,))
        statics = _expand(_with_static_config(static_items), "static_items")
        users = _expand(user_items, "user_items")
        cli = [text(s, "cli_config") for s in _cli_strings(cli_config)]

        # The auto-client's stubs: the built-in services, then the descriptors' (a
        # descriptor may replace a built-in one of the same name).
        stubs_map = {name: (stub, api_versions(enum)[1])
                     for name, (stub, enum) in _BUILTIN_STUBS.items()}
        # The built-in services' managers log to files of their own, as grpc-helper's.
        managers = ["ConfigManager", "LogsManager"]
        if with_events:
            stubs_map["events"] = (EventServiceStub, api_versions(EventApiVersion)[1])
            managers.append("EventsManager")
        for d in descriptors:
            stubs_map[d.name] = (d.client_stub, api_versions(d.api_version)[1])
            if isinstance(d.manager, RpcManager):
                ensure_manager_attributes(d.manager)
            logger = getattr(d.manager, "logger", None)
            if isinstance(logger, logging.Logger) and logger.name not in managers:
                managers.append(logger.name)

        use_python_levels()             # the server's logs take their levels from `logging`
        native = _Native(folders, statics, users, stubs_map, managers)
        services = []
        out = c_void_p()
        failure = None
        try:
            for d in descriptors:
                services.append(self._service(d, native))
            flags = (ffi.GH_RPC_WITH_EVENTS if with_events else 0) | \
                (ffi.GH_RPC_DEBUG_SIGNAL if with_debug_signal else 0)
            with contextlib.ExitStack() as uses:
                ptrs = [[uses.enter_context(h.use()) for h in handles]
                        for handles in (services, [c._handle for c in statics],
                                        [c._handle for c in users])]
                folders_ptr = uses.enter_context(folders._handle.use())
                ffi.gh_rpc_server_new(int(port), _array(c_void_p, ptrs[0]), len(services),
                                      folders_ptr, _array(c_char_p, cli), len(cli),
                                      _array(c_void_p, ptrs[1]), len(statics),
                                      _array(c_void_p, ptrs[2]), len(users), flags, byref(out))
        except Exception as e:  # noqa: BLE001 - raised below (or the manager's error)
            failure = e
        finally:
            for s in services:          # the servers built with them keep what they need
                s.close()
        if failure is not None:
            native.close()            # a server seen by a load hook is gone: never freed here
            error = native.load_error if native.load_error is not None else failure
            del failure
            raise error

        native.owned = True
        native.attach(out.value)
        native.view_config()
        # The debug dump (SIGUSR2) gets the Python threads' stacks too.
        dump_key = registry.add(DUMP_KIND, python_stacks)
        native.keys.append(dump_key)
        ffi.gh_rpc_server_set_dump_fn(out, _dump_thunk, dump_key, registry.free_user_data)
        self._native = native
        self._client = None
        self._client_lock = threading.Lock()
        self.descriptors = {d.name: d for d in descriptors}
        self.folders = folders
        self._free = weakref.finalize(self, _release_native, native)

    @staticmethod
    def _service(d, native):
        """A gh_rpc_service handle for descriptor d (the caller closes it)."""
        supported, current = api_versions(d.api_version)
        service_name, handlers = discover_service(d.register_method)
        stub_service, _ = describe_stub(d.client_stub)
        if stub_service is not None and stub_service != service_name:
            raise RpcException("descriptor %r: stub %s calls %s, register_method serves %s"
                               % (d.name, d.client_stub.__name__, stub_service, service_name),
                               ResultCode.ERROR_PARAM_INVALID)
        manager = d.manager
        # A proxied service's calls are the library's (no manager methods, no hooks).
        implemented = {m: None if d.is_proxy else manager_method(manager, m) for m in handlers}
        ptr = c_void_p()
        ffi.gh_rpc_service_new(text(d.name, "descriptor name"), service_name.encode("utf-8"),
                                _c_text(module_version(d.module)), supported, current, byref(ptr))
        service = NativeHandle("rpc_service", ptr, ffi.gh_rpc_service_free, what="service")
        try:
            with service.use() as out:
                RpcServer._describe(out, d, native, service_name, handlers, implemented)
                # for the server's reflection: the service's .proto files, from protobuf's
                # pool (its _pb2 module is imported: register_method's module imports it)
                for data in reflection.files_of_service(service_name):
                    ffi.gh_rpc_service_add_file_descriptor(out, data, len(data))
        except BaseException:
            service.close()
            raise
        return service

    @staticmethod
    def _describe(out, d, native, service_name, handlers, implemented):
        """The methods and the manager of service `out`."""
        manager = d.manager
        if d.is_proxy:
            ffi.gh_rpc_service_set_proxy(out, 1)
        for method, handler in handlers.items():
            fn = implemented[method]
            if fn is None:
                ffi.gh_rpc_service_add_method(out, method.encode("utf-8"), _cardinality(handler),
                                               _NO_HANDLER, None, _NO_FREE)
            else:
                key = registry.add(METHOD_KIND, _Method(native, fn, handler,
                                                        "/%s/%s" % (service_name, method)))
                native.keys.append(key)
                ffi.gh_rpc_service_add_method(out, method.encode("utf-8"), _cardinality(handler),
                                               _handler_thunk, key, registry.free_user_data)
        logger = getattr(manager, "logger", None)
        logger_name = logger.name if isinstance(logger, logging.Logger) else type(manager).__name__
        if d.is_proxy:
            pass
        elif isinstance(manager, RpcManager):
            key = registry.add(MANAGER_KIND, _Hooks(native, manager, d.name))
            native.keys.append(key)
            ffi.gh_rpc_service_set_manager(out, _c_text(logger_name), _load_thunk,
                                            _shutdown_thunk, key, registry.free_user_data)
        else:
            ffi.gh_rpc_service_set_manager(out, _c_text(logger_name), _NO_LOAD, _NO_SHUTDOWN,
                                            None, _NO_FREE)

    # -- information
    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when 0 was asked)."""
        return self._native.port

    @property
    def config(self) -> ConfigSet:
        """Its config set (the built-in static items, static_items and user_items):
        `item(name)`, `get`, `set`, `reset`... Valid while the server object lives."""
        return self._native.config

    @property
    def logs(self) -> RpcLogs:
        """Its rolling logs (`logger(name)`, `get`, `set`, `reset`, `folder`)."""
        return self._native.logs

    @property
    def logger(self) -> logging.Logger:
        """The "RpcServer" logger (grpc-helper's RpcServer.logger)."""
        return self._native.logger

    @property
    def client(self) -> RpcClient:
        """An auto-client of this server: a stub per served service, named as the
        descriptors (made on first use)."""
        with self._client_lock:
            if self._client is None:
                self._client = RpcClient(
                    "localhost", self.port, self._native.stubs_map, name="srv-client",
                    timeout=self._native.config.item("rpc-client-timeout").float_val,
                    logger=self._native.logger)
            return self._client

    auto_client = client

    @property
    def is_running(self) -> bool:
        """True while it serves; False once a shutdown started."""
        ptr = self._native.handle.acquire()
        if ptr is None:
            return False
        try:
            return bool(ffi.gh_rpc_server_is_running(ptr))
        finally:
            self._native.handle.release()

    def info(self, request: Filter) -> MultiServiceInfo:
        """srv.info: the services named by the Filter (none: all). An unknown name →
        RpcException ERROR_ITEM_UNKNOWN unless ignore_unknown."""
        with self._native.handle.use() as ptr:
            return message_call(ffi.gh_rpc_server_info, ptr, request, Filter, MultiServiceInfo)

    # -- health checking (grpc.health.v1.Health, served by every RpcServer)
    def set_health_status(self, service: str, status) -> None:
        """Sets the status of `service` (its gRPC name: "RpcServerService",
        "package.Service"; "" for the server as a whole) in the server's health service:
        HealthStatus.SERVING, NOT_SERVING or UNKNOWN (or health_pb2's values). Without
        one, "" and every served service are NOT_SERVING while the managers load, SERVING
        once they all loaded, NOT_SERVING from the start of the shutdown (later sets are
        then ignored)."""
        with self._native.handle.use() as ptr:
            ffi.gh_rpc_server_set_health(ptr, health.service_name(service), health.settable(status))

    def clear_health_status(self, service: str) -> None:
        """Forgets the status set for `service`: it follows the server's again."""
        with self._native.handle.use() as ptr:
            ffi.gh_rpc_server_clear_health(ptr, health.service_name(service))

    def health_status(self, service: str):
        """The status of `service` as Check answers it (a HealthStatus); None when the
        server does not know the service."""
        with self._native.handle.use() as ptr:
            return health.get(ffi.gh_rpc_server_get_health, ptr, service)

    def send_event(self, event) -> None:
        """Sends an api.Event to this server's event listeners in-process (no network
        round trip; what `client.events.send` does): the same checks (an empty name →
        ERROR_PARAM_MISSING, a space → ERROR_PARAM_INVALID); a server made without events →
        ERROR_STATE_UNEXPECTED."""
        data = event.SerializeToString()
        with self._native.handle.use() as ptr:
            ffi.gh_rpc_server_send_event(ptr, data, len(data))

    # -- lifecycle
    def shutdown(self, request=None) -> ResultStatus:
        """Shuts the server down: stops accepting calls, calls the managers' `_shutdown`,
        lets pending calls run for up to rpc-shutdown-grace seconds, cancels the rest.
        Idempotent; returns when done. From one of its own handlers it returns at once
        (gh_rpc_server_begin_shutdown: the shutdown goes on on a library thread;
        wait_shutdown() tells when it is done). With a ShutdownRequest, as the
        srv.shutdown RPC (returns at once; the server finishes `timeout` seconds later when
        it is >= 0, 0 meaning rpc-shutdown-timeout)."""
        if request is not None:
            if not self.is_running:
                return ResultStatus()     # idempotent, as grpc-helper's
            return self.client.srv.shutdown(request)
        serving = getattr(_tls, "serving", None) is self._native
        native = self._native
        ptr = native.handle.acquire()
        if ptr is None:
            return ResultStatus()
        try:
            if serving:
                ffi.gh_rpc_server_begin_shutdown(ptr)
            else:
                ffi.gh_rpc_server_shutdown(ptr)
        finally:
            native.handle.release()
        if not serving:
            native.detach_logs()
        return ResultStatus()

    def wait_shutdown(self, timeout: float = None) -> bool:
        """Blocks until the server is shut down (by shutdown(), the srv.shutdown RPC or a
        signal); False if `timeout` seconds passed first."""
        native = self._native
        deadline = None if timeout is None else time.monotonic() + max(0.0, float(timeout))
        while True:
            # Waits in short steps, so that Python signal handlers (Ctrl-C) run.
            step = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
            ptr = native.handle.acquire()
            if ptr is None:
                return True
            try:
                done = ffi.gh_rpc_server_wait_shutdown(ptr, step)
            finally:
                native.handle.release()
            if done:
                native.detach_logs()
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def handle_exit_signals(self):
        """Opt-in graceful exit: the first SIGINT or SIGTERM shuts the server down, the
        second exits the process at once (status 1). For one server per process; it
        replaces Python's SIGINT handler (KeyboardInterrupt)."""
        with self._native.handle.use() as ptr:
            ffi.gh_rpc_server_handle_exit_signals(ptr)

    def close(self):
        """Shuts down (if it runs) and frees the native server; the config and logs views
        and the auto-clients stop working. From one of its own handlers it returns at once
        (gh_rpc_server_release: the library frees the server on a thread of its own once
        the shutdown has finished). Not in grpc-helper: there the server lives until the
        process ends; here also until the RpcServer is collected."""
        if self._free.detach() is not None:
            client = self._client
            if client is not None:
                client.close()
            self._native.close(wait=getattr(_tls, "serving", None) is not self._native)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["RpcServer", "RpcServiceDescriptor", "api_versions", "module_version",
           "discover_service", "manager_method"]
