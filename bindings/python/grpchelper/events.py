"""grpc-helper's grpc_helper.events: EventsListener; implemented in grpchelper._helper.events."""

from ._helper.events import EventsListener

__all__ = ["EventsListener"]
