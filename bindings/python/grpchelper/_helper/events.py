"""grpc-helper's EventsListener (grpc_helper.events): listens to a server's `events`
service on a thread of its own and hands every real event (never a keep-alive) to
`on_event`; remembers its `client_id`, resumes its queue after a dropped connection or a
server restart (ERROR_STREAM_SHUTDOWN: "event service restarting"), starts a new queue when
the server no longer knows its id (ERROR_ITEM_UNKNOWN), retries after 0.5 s, doubling, as
the original (up to 30 s). `interrupt()` stops it."""

import logging
import threading
import traceback
from abc import ABC, abstractmethod

from ..api import EventFilter, EventInterrupt, ResultCode
from .errors import RpcException

# grpc-helper's first retry delay (seconds), doubled at each failure in a row, up to
# RPC_RETRY_DELAY_MAX (the original doubles without a bound: over four minutes after ten
# failures in a row).
RPC_RETRY_DELAY = 0.5
RPC_RETRY_DELAY_MAX = 30.0


class EventsListener(ABC):
    """Abstract event listener, with resume handling (grpc-helper's).

    Arguments:
        client: an RpcClient with an "events" stub.
        names: the event names to listen to (empty: all).
        client_id: a persisted listening id to resume (None: a new queue).
        logger: a logging.Logger (default: the "EventsListener" logger).
    """

    def __init__(self, client, names, client_id=None, logger=None):
        self.client = client
        self.names = names
        self.logger = logger if logger is not None else logging.getLogger(EventsListener.__name__)
        self.client_id = client_id
        self.ready = threading.Event()
        self._stop = threading.Event()
        self.listening_t = threading.Thread(target=self.__listen_to_events, daemon=True,
                                            name="EventsListener")
        self.listening_t.start()

    def __listen_to_events(self):
        retry_delay = RPC_RETRY_DELAY
        while not self._stop.is_set():
            try:
                first = True
                for s in self.client.events.listen(EventFilter(client_id=self.client_id, names=self.names)):
                    retry_delay = RPC_RETRY_DELAY
                    if first:
                        # Each stream's first message names its queue (a new one after an
                        # unknown id: remembered, where the original kept None).
                        first = False
                        self.client_id = s.client_id
                        if not self.ready.is_set():
                            self.logger.debug(f"Event listener #{self.client_id} is ready")
                            self.ready.set()
                    if len(s.event.name):
                        self.logger.debug(f">> Event listener #{self.client_id} on_event({s.event.name})")
                        self.on_event(s.event)
                        self.logger.debug(f"<< Event listener #{self.client_id} on_event({s.event.name})")
                # The listen stream ended normally: listening was interrupted.
                self.logger.debug(f"Event listener #{self.client_id}: end of listening loop")
                break
            except Exception as e:  # noqa: BLE001 - the original's loop: log, wait, retry
                if isinstance(e, RpcException) and e.rc == ResultCode.ERROR_ITEM_UNKNOWN \
                        and self.client_id is not None:
                    self.logger.warning(f"Event listening ID #{self.client_id} is unknown, ask for a new one")
                    self.client_id = None
                    continue
                error_trace = (
                    "event service restarting"
                    if isinstance(e, RpcException) and e.rc == ResultCode.ERROR_STREAM_SHUTDOWN
                    else f"{e}\n" + "".join(traceback.format_tb(e.__traceback__)))
                self.logger.error(f"Error occurred in event listener #{self.client_id} internal loop: {error_trace}")
                self.logger.warning(f"Retry in {retry_delay}s")
                if self._stop.wait(retry_delay):
                    break
                retry_delay = min(retry_delay * 2, RPC_RETRY_DELAY_MAX)

    @abstractmethod
    def on_event(self, event):  # pragma: no cover
        """Called with every event received (an api.Event), on the listening thread."""

    def interrupt(self):
        """Interrupts the listening loop (the server ends the listen stream; the queue is
        kept for rpc-event-retain-timeout seconds), then waits (up to 30 s) for the thread."""
        self.logger.debug(f">> Interrupting event listener #{self.client_id}")
        self._stop.set()
        self.client.events.interrupt(EventInterrupt(client_id=self.client_id))
        self.listening_t.join(30)
        self.logger.debug(f"<< Interrupting event listener #{self.client_id} "
                          f"(thread still running: {self.listening_t.is_alive()})")


__all__ = ["EventsListener", "RPC_RETRY_DELAY", "RPC_RETRY_DELAY_MAX"]
