"""A loopback TCP proxy a test controls: it stalls traffic, holds replies, and kills connections on demand.

It stands between clients and a real server, so a test (or bench/soak.py) can make the network misbehave the way
it does in production, without touching either side:

    proxy = StallProxy(server.port).start()
    proxy.stall()           # forward nothing either way on the open connections (a frozen link)
    proxy.stall(requests=False)  # requests still reach the server, its replies are held (a reply lost in flight)
    proxy.stall(new=True)   # new connections are accepted but stall too
    proxy.resume()          # held bytes flow again
    proxy.kill_all()        # close every open connection at once (a connection-kill storm)
    proxy.lose_reply_to(b"EVALSHA")  # the next connection to send this gets no reply until resume() (with
                                     # new=True, nor does any connection made after it)
    proxy.stop()

Each connection is pumped by two daemon threads; a stalled pump reads nothing, so held bytes wait in the
kernel's buffers and arrive late, as TCP would deliver them. Everything is ended by ``stop()``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Pair:
    number: int
    client: socket.socket
    upstream: socket.socket
    closed: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class StallProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<upstream_port>; see the module docstring."""

    def __init__(self, upstream_port: int, *, port: int = 0) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._count = 0
        # connections numbered up to this one are stalled (0: none); with _stall_new, every later one too
        self._stalled_upto = 0
        self._stall_new = False
        self._hold_requests = True
        self._marker: bytes | None = None  # lose_reply_to(): armed, waiting for a request holding this
        self._marker_new = False
        self._held_replies: set[int] = set()  # connections whose replies are held by lose_reply_to()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connections_made = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> StallProxy:
        self._listener.listen(512)
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def stall(self, *, requests: bool = True, new: bool = False) -> None:
        """Hold the traffic of every open connection: replies always, requests too unless ``requests=False``;
        with ``new``, connections made from now on are held as well."""
        with self._lock:
            self._stalled_upto = self._count
            self._stall_new = new
            self._hold_requests = requests

    def lose_reply_to(self, marker: bytes, *, new: bool = False) -> None:
        """Hold the replies of the first connection whose request holds ``marker`` (the request itself reaches the
        server); with ``new``, every connection made after that one is held too, requests and all."""
        with self._lock:
            self._marker = marker
            self._marker_new = new

    def resume(self) -> None:
        with self._lock:
            self._stalled_upto = 0
            self._stall_new = False
            self._marker = None
            self._held_replies.clear()

    def holding_replies(self) -> bool:
        """Whether ``lose_reply_to()`` has found its request and holds that connection's replies now."""
        with self._lock:
            return bool(self._held_replies)

    def kill_all(self) -> int:
        """Close every open connection; returns how many there were."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()
        return len(pairs)

    def stop(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.kill_all()
        for thread in self._threads:
            thread.join(2)

    def _held(self, pair: _Pair, request: bool) -> bool:
        with self._lock:
            if not request and pair.number in self._held_replies:
                return True
            if request and not self._hold_requests:
                return False
            return pair.number <= self._stalled_upto or self._stall_new

    def _watch_for_marker(self, pair: _Pair, data: bytes) -> None:
        with self._lock:
            if self._marker is not None and self._marker in data:
                self._marker = None
                self._held_replies.add(pair.number)
                if self._marker_new:  # from now on nothing gets through, either way, on any connection
                    self._stall_new = True
                    self._hold_requests = True

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                client.close()  # the server is down: the client sees its connection refused-ish, as without us
                continue
            upstream.settimeout(None)
            with self._lock:
                self._count += 1
                self.connections_made += 1
                pair = _Pair(self._count, client, upstream)
                self._pairs.append(pair)
            self._spawn(self._pump, pair, client, upstream, True)
            self._spawn(self._pump, pair, upstream, client, False)

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket, request: bool) -> None:
        try:
            while not pair.closed.is_set() and not self._stopped.is_set():
                if self._held(pair, request):
                    pair.closed.wait(0.02)
                    continue
                readable, _, _ = select.select([source], [], [], 0.05)
                if not readable or self._held(pair, request):  # stall() may have come while select waited
                    continue
                data = source.recv(65536)
                if not data:
                    break
                if request:
                    self._watch_for_marker(pair, data)
                sink.sendall(data)
        except (OSError, ValueError):  # the other pump or kill_all closed the sockets
            pass
        finally:
            pair.close()
            with self._lock, contextlib.suppress(ValueError):
                self._pairs.remove(pair)
