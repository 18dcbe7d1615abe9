"""Small helpers shared by the binding's test modules."""

import grpc


def bytes_handlers(**methods):
    """A generic handler for service t.T from {name: RpcMethodHandler} (raw bytes)."""
    return grpc.method_handlers_generic_handler("t.T", methods)
