"""The sidecar's HTTP server mechanics, bounded: at most `max_concurrent` requests are served at once,
each by one of as many threads started with the server; one more connection is answered `503` at once
on the accepting thread (no new thread, no queue), and a client that sends nothing for `timeout_s` is
closed. The bodies of requests are
the business of the handler (`ml.serving.api`).
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from dataclasses import dataclass
from http.server import HTTPServer

from ml.settings import ServingSettings

_BUSY_BODY = b'{"error": "the sidecar is serving its most requests; retry later"}'
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(_BUSY_BODY) + _BUSY_BODY)


@dataclass(frozen=True)
class HttpLimits:
    """What the HTTP port accepts: the bearer token of /predict (empty: /predict is off), the largest body,
    the most events in one body, the most requests at once, and how long a client may take to send."""

    token: str = ""
    max_body_bytes: int = 1024 * 1024
    max_events: int = 1000
    max_concurrent: int = 16
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, serving: ServingSettings) -> "HttpLimits":
        return cls(token=serving.token.get_secret_value(), max_body_bytes=serving.max_body_bytes,
                   max_events=serving.max_events, max_concurrent=serving.max_concurrent,
                   timeout_s=serving.request_timeout_s)


class BoundedServer(HTTPServer):
    """An HTTP server with a fixed number of places, each a thread started once (a thread per connection
    costs a clone and a stack per request); `busy` counts connections turned away."""

    request_queue_size = 128  # connections waiting to be accepted (socketserver's default: 5)

    def __init__(self, listener: socket.socket | tuple[str, int], handler, max_concurrent: int) -> None:
        """Serve `listener`, a listening socket (the sidecar's, handed to its port process), or bind an address."""
        if isinstance(listener, socket.socket):
            super().__init__(listener.getsockname()[:2], handler, bind_and_activate=False)
            self.socket.close()
            self.socket = listener
        else:
            super().__init__(listener, handler)
        self._places = threading.BoundedSemaphore(max_concurrent)
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._workers = [threading.Thread(target=self._serve_places, name=f"http-{i}", daemon=True)
                         for i in range(max_concurrent)]
        for worker in self._workers:
            worker.start()
        self._closing: queue.Queue = queue.Queue(maxsize=256)
        threading.Thread(target=self._close_refused, name="http-busy", daemon=True).start()
        self.busy = 0

    def process_request(self, request, client_address) -> None:
        """On the accepting thread: hand the connection to a free place, or answer 503 at once."""
        if not self._places.acquire(blocking=False):
            self.busy += 1
            _answer_busy(request)
            try:  # one thread lingers on refused connections; past 256 of them they are closed at once
                self._closing.put_nowait((time.monotonic() + LINGER_S, request))
            except queue.Full:
                self.shutdown_request(request)
            return
        self._work.put((request, client_address))

    def _serve_places(self) -> None:
        """One place: serve the connections handed to it, one at a time, until the server closes."""
        while (item := self._work.get()) is not None:
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
                self._places.release()

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            self._work.put(None)

    def _close_refused(self) -> None:
        """Close each refused connection once its client has read the answer and closed, or after
        LINGER_S: closing at once, with the client's body still arriving, resets the connection and the
        client sees an error instead of the 503."""
        while True:
            until, request = self._closing.get()
            try:
                while (left := until - time.monotonic()) > 0:
                    request.settimeout(left)
                    if not request.recv(65536):
                        break
            except OSError:
                pass
            self.shutdown_request(request)


LINGER_S = 2.0


def _answer_busy(request: socket.socket) -> None:
    """Answer 503 without a thread: read what the client has sent so far (so closing does not reset the
    connection before it reads the answer), write the fixed answer, close our side."""
    try:
        request.setblocking(False)
        try:
            while request.recv(65536):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        request.setblocking(True)
        request.settimeout(1.0)
        request.sendall(BUSY)
        request.shutdown(socket.SHUT_WR)
    except OSError:  # the client is gone: nothing to answer
        pass
