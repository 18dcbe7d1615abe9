"""Server reflection (grpc.reflection.v1 and v1alpha) served by the library: the
descriptors a Python host has — protobuf's descriptor pool, filled by the generated `_pb2`
modules it imported — turned into what the library takes (serialized FileDescriptorProtos).
protobuf is imported only here, when a server describes something."""


def _serialized(fd):
    data = getattr(fd, "serialized_pb", None)
    if data:
        return bytes(data)
    from google.protobuf import descriptor_pb2
    proto = descriptor_pb2.FileDescriptorProto()
    fd.CopyToProto(proto)
    return proto.SerializeToString()


def file_and_dependencies(fd):
    """[serialized FileDescriptorProto] of file descriptor `fd` (e.g. a `_pb2` module's
    DESCRIPTOR) and of every file it imports, transitively, each once."""
    out, seen, queue = [], set(), [fd]
    while queue:
        f = queue.pop(0)
        if f.name in seen:
            continue
        seen.add(f.name)
        out.append(_serialized(f))
        queue.extend(f.dependencies)
    return out


def files_of_service(service_name):
    """The files declaring `service_name` ("package.Service") and what they import, from
    protobuf's default descriptor pool; [] when protobuf is missing or the pool does not
    know the service (its `_pb2` module was not imported)."""
    try:
        from google.protobuf import descriptor_pool
    except ImportError:
        return []
    try:
        sd = descriptor_pool.Default().FindServiceByName(service_name)
    except KeyError:
        return []
    return file_and_dependencies(sd.file)


def service_of_path(path):
    """"/package.Service/Method" → "package.Service" (None for anything else)."""
    if not path.startswith("/") or path.count("/") != 2:
        return None
    return path[1:].split("/", 1)[0] or None
