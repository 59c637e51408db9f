"""A TCP proxy on loopback that can cut the link to a server (DynamoDB) without losing its data.

- ``refuse``: the port is closed and every open connection reset (DynamoDB down, a reset).
- ``hang``: connections are accepted but nothing comes back (a black-holed network).
- ``drop_responses``: requests reach the server but its answers are lost.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from connectors.dev.local_dynamodb import HOST, free_port


class TcpProxy:
    """Forwards 127.0.0.1:port to a target port; :meth:`cut` and :meth:`restore` the link."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode = "forward"
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._dropped = threading.Condition()
        self.responses_dropped = 0  # reads of a server's answer lost in drop_responses mode

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self, mode: str = "refuse") -> None:
        assert mode in ("refuse", "hang", "drop_responses")
        self.mode = mode
        if mode == "refuse":
            self._close_listener()
            self._reset_all()
        elif mode == "hang":
            self._reset_all()  # pooled connections would still work otherwise; new ones are held mute

    def wait_for_a_dropped_response(self, since: int, timeout: float = 10.0) -> None:
        """Until an answer is lost after ``since`` dropped ones: the request it answers was applied.
        An event, not a poll of the table: the caller restores the link within botocore's retries."""
        with self._dropped:
            assert self._dropped.wait_for(lambda: self.responses_dropped > since, timeout), "no answer was dropped"

    def restore(self) -> None:
        """Forward again; connections open during the outage are reset (their HTTP framing is lost)."""
        self.mode = "forward"
        self._reset_all()
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self._close_listener()
        self._reset_all()

    # -- plumbing ----------------------------------------------------------------------------

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept(); close() alone would not
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None

    def _reset_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:  # RST, not FIN: the peer sees a reset connection at once
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.update(sockets)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            self._track(client)
            if self.mode == "hang":
                continue  # held open, never answered
            try:
                upstream = socket.create_connection((HOST, self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._track(upstream)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, is_response: bool) -> None:
        try:
            while data := source.recv(65536):
                if is_response and self.mode == "drop_responses":
                    with self._dropped:
                        self.responses_dropped += 1
                        self._dropped.notify_all()
                    continue
                if self.mode == "hang":
                    continue
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
