"""The tool's commands on the helper services of a running server (grpc-helper's srv,
config, log and events services, as every RpcServer serves them — ours or the original's):

    info [NAME ...]                         srv.info: the services, versions, proxies
    config get|reset [NAME ...]             config: the items (reset: back to defaults)
    config set NAME=VALUE ...
    log get|reset NAME ...                  log: the loggers' levels ('' : the root)
    log set NAME=LEVEL ... [--disable]
    events listen [NAME ...] [--count N]    events: print them as they come
    events send NAME [KEY=VALUE ...]
    proxy list                              the proxied services and their backends
    proxy register NAME ... --backend-port P [--backend-host H] [--version V]
    proxy forget NAME ...
    shutdown [--in SECONDS]                 srv.shutdown

Each takes --host (default localhost), -p/--port (default 54321, grpc-helper's) and
--timeout (seconds to reach the server and for each call, default 10), and prints a table,
or with --json the response as JSON (protobuf's JSON mapping, field names as in the
.proto). A response whose Result is an error exits 1 with "<ResultCode name>: <msg>".
"""

import argparse

from .dynamic import positive_seconds
from .output import EXIT_UNREACHABLE, ToolError, print_json, print_json_line, table, waiting

DEFAULT_PORT = 54321


def _api():
    from .. import api
    return api


def _to_dict(message):
    from google.protobuf import json_format
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                     preserving_proto_field_name=True)


def _wait_reachable(args):
    """Waits (up to --timeout) until the server accepts a connection; ToolError
    UNAVAILABLE (exit 3) otherwise."""
    import grpchelper
    target = "%s:%d" % (args.host, args.port)
    ch = grpchelper.insecure_channel(target)
    try:
        with waiting("%s to answer" % target):
            grpchelper.channel_ready_future(ch).result(timeout=args.timeout)
    except grpchelper.FutureTimeoutError:
        raise ToolError("UNAVAILABLE", "cannot reach %s (waited %gs)" % (target, args.timeout),
                        EXIT_UNREACHABLE)
    finally:
        ch.close()


def _client(args):
    """An RpcClient with the four helper stubs, once the server is reachable."""
    from .. import RpcClient
    api = _api()
    _wait_reachable(args)
    return RpcClient(args.host, args.port, {
        "srv": (api.RpcServerServiceStub, api.ServerApiVersion.SERVER_API_CURRENT),
        "config": (api.ConfigServiceStub, api.ConfigApiVersion.CONFIG_API_CURRENT),
        "log": (api.LoggerServiceStub, api.LoggerApiVersion.LOGGER_API_CURRENT),
        "events": (api.EventServiceStub, api.EventApiVersion.EVENT_API_CURRENT),
    }, timeout=args.timeout, name="grpchelper-cli")


def _tool_error(e):
    """An RpcException as the tool reports it: the ResultCode's name and the server's
    message (without the client's "RPC returned error: " prefix)."""
    api = _api()
    message = str(e)
    prefix = "RPC returned error: "
    if message.startswith(prefix):
        message = message[len(prefix):]
    return ToolError(api.ResultCode.Name(e.rc) if e.rc in api.ResultCode.values() else str(e.rc), message)


def _call(method, request, timeout):
    """method(request); an error Result (or a failed RPC: ERROR_RPC) → ToolError."""
    from .. import RpcException
    try:
        return method(request, timeout=timeout)
    except RpcException as e:
        raise _tool_error(e)


def _run(args, fn):
    client = _client(args)
    try:
        return fn(client)
    finally:
        client.close()


def _pairs(values, what):
    out = []
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name:
            raise ToolError("ERROR_PARAM_INVALID", "%s must be NAME=VALUE, not %r" % (what, v))
        out.append((name, value))
    return out


# --------------------------------------------------------------------------- commands

def info(args):
    api = _api()

    def go(c):
        r = _call(c.srv.info, api.Filter(names=args.names), args.timeout)
        if args.json:
            print_json(_to_dict(r))
            return 0
        table(["service", "version", "api", "proxy"],
              [(i.name, i.version, "%d (supported %d)" % (i.current_api_version, i.supported_api_version),
                ("%s:%d" % (i.proxy_host, i.proxy_port) if i.proxy_port else "not registered")
                if i.is_proxy else "")
               for i in r.items])
        return 0
    return _run(args, go)


def _print_config(args, r):
    if args.json:
        print_json(_to_dict(r))
        return 0
    api = _api()
    table(["name", "value", "default", "validator", "description"],
          [(i.name, i.value, i.default_value,
            api.ConfigValidator.Name(i.validator).replace("CONFIG_VALID_", "").lower(), i.description)
           for i in r.items])
    return 0


def _by_names(service, method, show):
    """A command calling service.method(Filter(names)) and printing the answer with show."""
    def command(args):
        api = _api()
        return _run(args, lambda c: show(args, _call(getattr(getattr(c, service), method),
                                                     api.Filter(names=args.names), args.timeout)))
    return command


config_get = _by_names("config", "get", _print_config)
config_reset = _by_names("config", "reset", _print_config)


def config_set(args):
    api = _api()
    update = api.ConfigUpdate(items=[api.ConfigItemUpdate(name=n, value=v)
                                     for n, v in _pairs(args.items, "an item")])
    return _run(args, lambda c: _print_config(args, _call(c.config.set, update, args.timeout)))


LEVELS = ("debug", "info", "warning", "error", "critical")


def _print_loggers(args, r):
    if args.json:
        print_json(_to_dict(r))
        return 0
    api = _api()
    table(["logger", "level", "enabled"],
          [(i.name or "(root)", api.LoggerLevel.Name(i.level).replace("LVL_", "").lower(),
            "yes" if i.enabled else "no") for i in r.items])
    return 0


log_get = _by_names("log", "get", _print_loggers)
log_reset = _by_names("log", "reset", _print_loggers)


def log_set(args):
    api = _api()
    items = []
    for name, level in _pairs(args.items, "a logger"):
        if level.lower() not in LEVELS:
            raise ToolError("ERROR_PARAM_INVALID", "level %r of %s is not one of %s"
                            % (level, name, ", ".join(LEVELS)))
        items.append(api.LoggerConfig(name=name, enabled=not args.disable,
                                      level=api.LoggerLevel.Value("LVL_" + level.upper())))
    return _run(args, lambda c: _print_loggers(args, _call(c.log.set, api.LoggerUpdate(items=items),
                                                             args.timeout)))


def _event_text(event):
    return " ".join([event.name] + ["%s=%s" % (p.name, p.value) for p in event.properties])


def events_listen(args):
    """Prints the events as they come: "NAME KEY=VALUE ..." lines (--json: one JSON object
    a line), until --count events came, the server ends the stream (its shutdown: exit
    0), or Ctrl-C (exit 130). The stream is read on a thread of its own, so that Ctrl-C
    reaches the main thread at once; ending it cancels the call, which leaves the
    server's queue interrupted (dropped after the server's retain time, or resumed with
    --client-id)."""
    import queue
    import sys
    import threading
    import grpchelper
    api = _api()
    target = "%s:%d" % (args.host, args.port)
    _wait_reachable(args)
    ch = grpchelper.insecure_channel(target)
    call = ch.unary_stream("/EventService/listen", request_serializer=api.EventFilter.SerializeToString,
                           response_deserializer=api.EventStatus.FromString)(
        api.EventFilter(names=args.names, client_id=args.client_id or 0),
        metadata=(("api_version", str(api.EventApiVersion.EVENT_API_CURRENT)), ("client", "grpchelper-cli")))
    got = queue.Queue()

    def read():
        try:
            for status in call:
                got.put(status)
        except grpchelper.RpcError as e:
            got.put(e)
        got.put(None)

    threading.Thread(target=read, name="events-listen", daemon=True).start()
    count = 0
    try:
        while True:
            try:
                item = got.get(timeout=0.25)
            except queue.Empty:
                continue
            if item is None:
                return 0
            if isinstance(item, grpchelper.RpcError):
                raise ToolError(item.code().name, item.details() or "the listen call failed")
            if item.r.code == api.ResultCode.ERROR_STREAM_SHUTDOWN:
                # the server shut down: the end of its events, not an error of the tool
                sys.stderr.write("%s shut down: no more events\n" % target)
                return 0
            if item.r.code:
                raise ToolError(api.ResultCode.Name(item.r.code) if item.r.code in api.ResultCode.values()
                                else str(item.r.code), item.r.msg)
            if not item.HasField("event"):
                # the stream's first message: its queue's id
                sys.stderr.write("listening to the events of %s (queue #%d%s); Ctrl-C ends\n"
                                 % (target, item.client_id,
                                    ", names " + ", ".join(args.names) if args.names else ""))
                sys.stderr.flush()
                continue
            if args.json:
                print_json_line(_to_dict(item.event))
            else:
                sys.stdout.write(_event_text(item.event) + "\n")
                sys.stdout.flush()
            count += 1
            if args.count and count >= args.count:
                return 0
    finally:
        call.cancel()
        ch.close()


def _result_command(args, method, request, text):
    """Calls method(request) (a ResultStatus answer); prints `text` (--json: the answer)."""
    def go(c):
        r = _call(method(c), request, args.timeout)
        if args.json:
            print_json(_to_dict(r))
        else:
            print(text)
        return 0
    return _run(args, go)


def events_send(args):
    api = _api()
    event = api.Event(name=args.name, properties=[api.EventProperty(name=n, value=v)
                                                  for n, v in _pairs(args.properties, "a property")])
    return _result_command(args, lambda c: c.events.send, event, "sent %s" % _event_text(event))


def proxy_list(args):
    api = _api()

    def go(c):
        r = _call(c.srv.info, api.Filter(), args.timeout)
        items = [i for i in r.items if i.is_proxy]
        if args.json:
            print_json([_to_dict(i) for i in items])
            return 0
        table(["service", "backend", "version"],
              [(i.name, "%s:%d" % (i.proxy_host, i.proxy_port) if i.proxy_port else "not registered",
                i.version) for i in items])
        return 0
    return _run(args, go)


def proxy_register(args):
    api = _api()
    request = api.ProxyRegisterRequest(names=args.names, version=args.version, host=args.backend_host,
                                       port=args.backend_port)
    return _result_command(args, lambda c: c.srv.proxy_register, request, "registered %s at %s:%d" % (
        ", ".join(args.names), args.backend_host or "(caller's host)", args.backend_port))


def proxy_forget(args):
    api = _api()
    return _result_command(args, lambda c: c.srv.proxy_forget, api.Filter(names=args.names),
                           "forgot %s" % ", ".join(args.names))


def shutdown(args):
    api = _api()
    return _result_command(args, lambda c: c.srv.shutdown, api.ShutdownRequest(timeout=args.shutdown_timeout),
                           "%s:%d is shutting down" % (args.host, args.port))


# --------------------------------------------------------------------------- parsers

def _common():
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("server")
    g.add_argument("--host", default="localhost", help="the server's host (default: localhost)")
    g.add_argument("-p", "--port", type=int, default=DEFAULT_PORT,
                   help="the server's port (default: %d)" % DEFAULT_PORT)
    g.add_argument("--timeout", type=positive_seconds, default=10.0,
                   help="seconds to reach the server and for each call (default: 10)")
    g.add_argument("--json", action="store_true", help="print JSON (for scripts) instead of a table")
    return p


def add_commands(sub):
    common = _common()

    p = sub.add_parser("info", parents=[common], help="the services of a running server (srv.info)",
                       description="The services a running server serves (srv.info): name, version, "
                                   "API versions, proxied backends.")
    p.add_argument("names", nargs="*", metavar="NAME", help="services to show (default: all)")
    p.set_defaults(func=info)

    def group(name, help, description):
        g = sub.add_parser(name, help=help, description=description)
        s = g.add_subparsers(dest="action", metavar="ACTION")
        s.required = True
        return s

    s = group("config", "a running server's config items (config service)",
              "Read, set and reset a running server's config items (its config service; with "
              "proxied servers, merged with theirs).")
    p = s.add_parser("get", parents=[common], help="show items (default: all)")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(func=config_get)
    p = s.add_parser("set", parents=[common], help="set items: NAME=VALUE ...")
    p.add_argument("items", nargs="+", metavar="NAME=VALUE")
    p.set_defaults(func=config_set)
    p = s.add_parser("reset", parents=[common], help="reset items to their defaults (default: all)")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(func=config_reset)

    s = group("log", "a running server's logger levels (log service)",
              "Read, set and reset the levels of a running server's loggers (its log service).")
    p = s.add_parser("get", parents=[common], help="show loggers ('' : the root logger)")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=log_get)
    p = s.add_parser("set", parents=[common], help="set levels: NAME=LEVEL ... (%s)" % "|".join(LEVELS))
    p.add_argument("items", nargs="+", metavar="NAME=LEVEL")
    p.add_argument("--disable", action="store_true", help="disable these loggers (default: enabled)")
    p.set_defaults(func=log_set)
    p = s.add_parser("reset", parents=[common], help="reset loggers to their defaults")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=log_reset)

    s = group("events", "listen to or send a running server's events (events service)",
              "Listen to a running server's events (printed as they come) or send one.")
    p = s.add_parser("listen", parents=[common], help="print events as they come (Ctrl-C ends)")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these events (default: all)")
    p.add_argument("--count", type=int, default=0, help="end after this many events")
    p.add_argument("--client-id", type=int, default=0, help="resume this interrupted queue")
    p.set_defaults(func=events_listen)
    p = s.add_parser("send", parents=[common], help="send an event: NAME [KEY=VALUE ...]")
    p.add_argument("name", metavar="NAME")
    p.add_argument("properties", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=events_send)

    s = group("proxy", "a running main server's proxied services",
              "List, register and forget the backends of a running main server's proxied services.")
    p = s.add_parser("list", parents=[common], help="the proxied services and their backends")
    p.set_defaults(func=proxy_list)
    p = s.add_parser("register", parents=[common], help="register a backend for services")
    p.add_argument("names", nargs="+", metavar="NAME", help="the proxied services' names")
    p.add_argument("--backend-port", type=int, required=True, help="the backend's port")
    p.add_argument("--backend-host", default="", help="the backend's host (default: the caller's)")
    p.add_argument("--version", default="", help="the backend's version (\"title:version\")")
    p.set_defaults(func=proxy_register)
    p = s.add_parser("forget", parents=[common], help="forget the backend of services")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.set_defaults(func=proxy_forget)

    p = sub.add_parser("shutdown", parents=[common], help="shut a running server down (srv.shutdown)",
                       description="Ask a running server to shut down (srv.shutdown).")
    p.add_argument("--in", dest="shutdown_timeout", type=int, default=-1, metavar="SECONDS",
                   help="seconds the server waits after its shutdown before exiting "
                        "(default -1: none; 0: its rpc-shutdown-timeout)")
    p.set_defaults(func=shutdown)
