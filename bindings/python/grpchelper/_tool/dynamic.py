"""The `list` and `call` subcommands: grpcurl's everyday use, on any gRPC server that serves
server reflection (a grpchelper server with enable_reflection(), every RpcServer, grpcio
with grpcio-reflection, grpc-go, ...).

    grpchelper list HOST:PORT [SERVICE]        the listed services, or one's methods
    grpchelper call HOST:PORT /pkg.Service/Method ['{json}']

The tool has no generated code for the server's services: it asks the server's reflection
for the .proto files that declare them (file_containing_symbol, then file_by_filename for
each import not received yet), builds them into a private DescriptorPool, and makes the
message classes from there (protobuf's message_factory). Requests are read from JSON and
responses printed as JSON with protobuf's json_format (field names as the .proto writes
them). Reflection is asked on one ServerReflectionInfo stream, v1 first, then v1alpha when
v1 answers UNIMPLEMENTED (grpcio-reflection serves only v1alpha; the messages are the same
bytes). The reflection messages are the tool's own (reflection_pb2, generated from
Protos/grpc/reflection/v1): grpcio-reflection is not needed.

grpc-helper's convention is honoured too: a response whose field `r` is a Result with a
non-zero code is printed, then the tool fails with that ResultCode's name and message.
"""

import argparse
import base64
import binascii
import json
import queue
import sys

from .. import RpcError, StatusCode, insecure_channel
from .._grpc.status import status_code
from .output import (EXIT_ERROR, EXIT_UNREACHABLE, EXIT_USAGE, ToolError, print_json,
                     print_json_line, table, waiting)

REFLECTION_PATHS = ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")

# (client_streaming, server_streaming) → how `list` names the method's kind.
KINDS = {(False, False): "unary", (False, True): "server streaming",
         (True, False): "client streaming", (True, True): "bidi streaming"}


def add_commands(sub):
    p = sub.add_parser(
        "list", help="the services a server lists through reflection, or a service's methods",
        description="Without SERVICE: the services the server lists through server "
                    "reflection, one per line. With SERVICE: its methods (path, kind, "
                    "request -> response).")
    _common_arguments(p)
    p.add_argument("service", nargs="?", metavar="SERVICE",
                   help="a fully qualified service name (pkg.Service)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: a list of names, or of the service's methods")
    p.set_defaults(func=list_command)

    p = sub.add_parser(
        "call", help="call a method with a JSON request, its types taken from reflection",
        description="Calls METHOD with the request(s) read from JSON and prints each "
                    "response as JSON (a unary response indented, streamed responses one "
                    "per line). The message types come from the server's reflection. A "
                    "client-streaming or bidi method takes several JSON objects (one per "
                    "line, or a JSON array); the input is read to its end before the call.")
    _common_arguments(p)
    p.add_argument("method", type=method_name, metavar="METHOD",
                   help="/pkg.Service/Method (also pkg.Service/Method, pkg.Service.Method)")
    p.add_argument("request", nargs="?", metavar="JSON",
                   help="the request(s) as JSON; '-', or none with input piped in: read from "
                        "stdin; none at a terminal: an empty request (empty input: "
                        "an empty request)")
    p.add_argument("--json-lines", action="store_true",
                   help="print a unary response on one line too")
    p.set_defaults(func=call_command)


def _common_arguments(p):
    p.add_argument("target", metavar="HOST:PORT",
                   help="the server's address (as grpcio writes targets: also unix:PATH)")
    p.add_argument("-H", "--header", dest="metadata", action="append", default=[],
                   type=header, metavar="KEY:VALUE",
                   help="metadata sent with the calls (reflection too), repeatable; the key "
                        "is lowercased; a -bin key's value is base64")
    p.add_argument("--timeout", type=positive_seconds, default=10.0, metavar="S",
                   help="deadline of each call, in seconds (default 10)")


# ---- argument types -----------------------------------------------------------------------

def header(text):
    """"key: value" → (key, value), as grpcurl's -H: the key lowercased (gRPC keys are), the
    value of a -bin key decoded from base64 (padding optional)."""
    key, sep, value = text.partition(":")
    key, value = key.strip().lower(), value.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError("%r is not KEY:VALUE" % text)
    if key.endswith("-bin"):
        try:
            return key, base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        except binascii.Error:
            raise argparse.ArgumentTypeError("the value of %s is not base64: %r" % (key, value))
    return key, value


def positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError("%r is not a positive number of seconds" % text)
    return value


def method_name(text):
    """"/pkg.Service/Method", "pkg.Service/Method" or "pkg.Service.Method" → (service, method)."""
    name = text[1:] if text.startswith("/") else text
    service, _, method = name.rpartition("/") if "/" in name else name.rpartition(".")
    if not service or not method or "/" in service:
        raise argparse.ArgumentTypeError("%r is not a method: write /pkg.Service/Method" % text)
    return service, method


# ---- reflection ---------------------------------------------------------------------------

class _Stream:
    """One ServerReflectionInfo stream: `ask(request)` sends a request and returns its
    answer (the service answers each request with one response, in order)."""

    def __init__(self, channel, path, pb, timeout, metadata):
        self._requests = queue.Queue()
        info = channel.stream_stream(path,
                                     request_serializer=pb.ServerReflectionRequest.SerializeToString,
                                     response_deserializer=pb.ServerReflectionResponse.FromString)
        self._answers = info(iter(self._requests.get, None), timeout=timeout, metadata=metadata)

    def ask(self, request):
        self._requests.put(request)
        return next(self._answers)

    def close(self):
        self._requests.put(None)        # ends the request iterator's thread
        self._answers.cancel()


class Reflection:
    """A server's reflection, asked on one stream: the services it lists, and services
    resolved from the files that declare them, built into `pool` (a private
    DescriptorPool). Failures raise ToolError."""

    def __init__(self, channel, target, timeout, metadata):
        from google.protobuf import descriptor_pool
        from . import reflection_pb2
        self.pool = descriptor_pool.DescriptorPool()
        self._pb = reflection_pb2
        self._channel = channel
        self._target = target
        self._timeout = timeout
        self._metadata = metadata
        self._stream = None
        self._files = {}        # file name → FileDescriptorProto received
        self._built = set()     # file names added to the pool

    def close(self):
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def services(self):
        """The names of the services the server lists, sorted."""
        answer = self._ask("list_services_response", list_services="")
        return sorted(s.name for s in answer.service)

    def service(self, name):
        """The ServiceDescriptor of service `name`, with every type it uses in the pool."""
        try:
            answer = self._ask("file_descriptor_response", file_containing_symbol=name)
        except ToolError as e:
            if e.name != "NOT_FOUND":
                raise
            raise ToolError(e.name, "%s does not describe %s (%s)"
                            % (self._target, name, e.message)) from None
        self._build(answer)
        try:
            return self.pool.FindServiceByName(name)
        except KeyError:
            raise ToolError("NOT_FOUND", "%s is not a service" % name) from None

    def method(self, service, method):
        """The MethodDescriptor of service.method."""
        sd = self.service(service)
        md = sd.methods_by_name.get(method)
        if md is None:
            raise ToolError("NOT_FOUND", "service %s has no method %s (it has: %s)"
                            % (service, method, ", ".join(m.name for m in sd.methods)))
        return md

    def _ask(self, expected, **request):
        """The `expected` part of the server's answer to a ServerReflectionRequest."""
        request = self._pb.ServerReflectionRequest(**request)
        try:
            answer = self._answer(request)
        except RpcError as e:
            code = e.code()
            if code == StatusCode.UNIMPLEMENTED:
                raise ToolError(code.name, "%s serves no server reflection (%s)"
                                % (self._target, e.details())) from None
            raise ToolError(code.name, e.details() or "",
                            EXIT_UNREACHABLE if code == StatusCode.UNAVAILABLE else EXIT_ERROR) \
                from None
        except StopIteration:
            raise ToolError("INTERNAL", "%s ended its reflection stream without answering"
                            % self._target) from None
        kind = answer.WhichOneof("message_response")
        if kind == "error_response":
            error = answer.error_response
            raise ToolError(status_code(error.error_code).name, error.error_message)
        if kind != expected:
            raise ToolError("INTERNAL", "%s answered reflection's %s with %s"
                            % (self._target, request.WhichOneof("message_request"), kind))
        return getattr(answer, kind)

    def _answer(self, request):
        if self._stream is None:
            for path in REFLECTION_PATHS:
                self._stream = _Stream(self._channel, path, self._pb, self._timeout,
                                       self._metadata)
                try:
                    return self._stream.ask(request)
                except RpcError as e:
                    if e.code() != StatusCode.UNIMPLEMENTED or path == REFLECTION_PATHS[-1]:
                        raise
                    self.close()
        return self._stream.ask(request)

    def _build(self, response):
        """Adds the file a file_descriptor_response answers first to the pool, after
        asking for every file it imports that the server has not sent yet."""
        from google.protobuf import descriptor_pb2
        first = None
        asked = set()
        while True:
            for data in response.file_descriptor_proto:
                f = descriptor_pb2.FileDescriptorProto.FromString(data)
                self._files.setdefault(f.name, f)
                first = first or f.name
            missing = [d for f in self._files.values() for d in f.dependency
                       if d not in self._files]
            if not missing:
                break
            if missing[0] in asked:     # answered without it: never ask twice
                raise ToolError("NOT_FOUND", "%s does not send %s"
                                % (self._target, missing[0]))
            asked.add(missing[0])
            response = self._ask("file_descriptor_response", file_by_filename=missing[0])
        if first is None:
            raise ToolError("INTERNAL", "%s answered with no file" % self._target)
        self._add(first)

    def _add(self, name):
        """Adds file `name` to the pool, the files it imports first."""
        if name in self._built:
            return
        f = self._files[name]
        for d in f.dependency:
            self._add(d)
        try:
            self.pool.Add(f)
        except (TypeError, ValueError) as e:
            raise ToolError("INTERNAL", "%s: the descriptors of %s do not build: %s"
                            % (self._target, name, e)) from None
        self._built.add(name)


class Session:
    """A channel to the target and its Reflection, closed together."""

    def __init__(self, args):
        try:
            self.channel = insecure_channel(args.target)
        except ValueError as e:
            raise ToolError("INVALID_ARGUMENT", str(e), EXIT_USAGE) from None
        self.reflection = Reflection(self.channel, args.target, args.timeout, args.metadata)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.reflection.close()
        self.channel.close()


# ---- list ---------------------------------------------------------------------------------

def list_command(args):
    with Session(args) as s, waiting(args.target):
        if args.service is None:
            names = s.reflection.services()
        else:
            methods = s.reflection.service(args.service).methods
    if args.service is None:
        if args.json:
            print_json(names)
        else:
            sys.stdout.write("".join(n + "\n" for n in names))
        return 0
    rows = [{"method": m.name, "path": "/%s/%s" % (m.containing_service.full_name, m.name),
             "input": m.input_type.full_name, "output": m.output_type.full_name,
             "client_streaming": m.client_streaming, "server_streaming": m.server_streaming}
            for m in methods]
    if args.json:
        print_json(rows)
    else:
        table(["METHOD", "KIND", "REQUEST -> RESPONSE"],
              [(r["path"], KINDS[r["client_streaming"], r["server_streaming"]],
                "%s -> %s" % (r["input"], r["output"])) for r in rows])
    return 0


# ---- call ---------------------------------------------------------------------------------

def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def call_command(args):
    from google.protobuf import message_factory
    with Session(args) as s:
        with waiting(args.target):
            md = s.reflection.method(*args.method)
        s.reflection.close()
        pool = s.reflection.pool
        if args.request == "-" or (args.request is None and not _is_terminal(sys.stdin)):
            text = sys.stdin.read()
        else:
            # no JSON and no input piped in (a terminal): an empty request, as grpcurl
            text = args.request or ""
        request_class = message_factory.GetMessageClass(md.input_type)
        response_class = message_factory.GetMessageClass(md.output_type)
        requests = parse_requests(text, md, request_class, pool)
        path = "/%s/%s" % (md.containing_service.full_name, md.name)
        streams = md.client_streaming, md.server_streaming
        multi_callable = {(False, False): s.channel.unary_unary,
                          (False, True): s.channel.unary_stream,
                          (True, False): s.channel.stream_unary,
                          (True, True): s.channel.stream_stream}[streams](
            path, request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString)
        request = iter(requests) if md.client_streaming else requests[0]
        with waiting(path):
            try:
                if md.server_streaming:
                    responses = multi_callable(request, timeout=args.timeout,
                                               metadata=args.metadata)
                    try:
                        for response in responses:
                            print_json_line(as_json(response, pool))
                            check_result(response)
                    finally:
                        responses.cancel()
                else:
                    response = multi_callable(request, timeout=args.timeout,
                                              metadata=args.metadata)
                    (print_json_line if args.json_lines else print_json)(as_json(response, pool))
                    check_result(response)
            except RpcError as e:
                raise ToolError(e.code().name, e.details() or "") from None
    return 0


def parse_requests(text, md, request_class, pool):
    """The request messages of a call from the JSON `text`: one object for a method that
    takes one request (nothing: an empty request); for a client-streaming or bidi method
    any number of objects (one per line, or concatenated) or one JSON array of them.
    ToolError INVALID_ARGUMENT for bad JSON or a value the message type does not have."""
    from google.protobuf import json_format
    values = json_values(text)
    if md.client_streaming:
        if len(values) == 1 and isinstance(values[0], list):
            values = values[0]
    elif not values:
        values = [{}]
    elif len(values) != 1:
        raise ToolError("INVALID_ARGUMENT", "%s takes one request (a JSON object), not %d "
                        "JSON values" % (md.full_name, len(values)))
    requests = []
    for n, value in enumerate(values, 1):
        where = "request %d" % n if md.client_streaming else "the request"
        if not isinstance(value, dict):
            raise ToolError("INVALID_ARGUMENT", "%s is not a JSON object: %s"
                            % (where, json.dumps(value)[:80]))
        try:
            requests.append(json_format.ParseDict(value, request_class(), descriptor_pool=pool))
        except json_format.ParseError as e:
            reason = " ".join(line.strip() for line in str(e).splitlines())   # one line
            raise ToolError("INVALID_ARGUMENT", "%s: %s" % (where, reason)) from None
    return requests


def json_values(text):
    """The JSON values of `text`, separated by whitespace (JSON Lines, or concatenated)."""
    decoder = json.JSONDecoder()
    values = []
    end = 0
    while True:
        while end < len(text) and text[end].isspace():
            end += 1
        if end == len(text):
            return values
        try:
            value, end = decoder.raw_decode(text, end)
        except json.JSONDecodeError as e:
            raise ToolError("INVALID_ARGUMENT", "invalid JSON: %s" % e) from None
        values.append(value)


def as_json(message, pool):
    from google.protobuf import json_format
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     descriptor_pool=pool)


def check_result(message):
    """grpc-helper's convention: ToolError with the ResultCode's name and message when the
    message's field `r` is a Result {code, msg, stack} with a non-zero code. The name comes
    from the reflected ResultCode enum (the server's own, so a code this package does not
    know is named too)."""
    field = message.DESCRIPTOR.fields_by_name.get("r")
    result = field.message_type if field is not None else None
    if result is None or result.name != "Result":
        return
    code = result.fields_by_name.get("code")
    try:
        present = message.HasField("r")
    except ValueError:          # a repeated field: not a Result
        return
    if code is None or code.enum_type is None or not present or not message.r.code:
        return
    value = code.enum_type.values_by_number.get(message.r.code)
    raise ToolError(value.name if value is not None else str(message.r.code),
                    getattr(message.r, "msg", ""))
