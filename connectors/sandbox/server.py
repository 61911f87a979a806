"""A small threaded HTTP(S) server: one `App.handle(Request) -> Response` per API.

HTTP/1.1 keep-alive (clients reuse connections, as they do against the real APIs); TLS is
negotiated in the connection's own thread so a slow client never blocks the accept loop.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from .wire import dumps


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    started: float = 0.0  # perf_counter when the app began answering (for accounting)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        import json

        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json;charset=UTF-8"
    delay: float = 0.0  # seconds to wait before answering (slow fault)

    @classmethod
    def json(cls, status: int, obj: Any, headers: list[tuple[str, str]] | None = None
             ) -> Response:
        return cls(status, dumps(obj), headers or [])


class Drop(Exception):
    """Close the connection without sending a response."""


class App(Protocol):
    def handle(self, request: Request) -> Response: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out as two writes: with Nagle's algorithm on, the body waits
    # for the client's (delayed, ~40 ms) ACK of the headers on every response.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # requests carry personal data; the sandbox logs nothing

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                      {k.lower(): v for k, v in self.headers.items()}, body)
        try:
            resp = self.server.app.handle(req)
        except Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if resp.delay or self.server.latency:
            time.sleep(resp.delay + self.server.latency)
        self.send_response(resp.status)
        if resp.body or resp.status != 204:
            self.send_header("Content-Type", resp.content_type)
        self.send_header("Content-Length", str(len(resp.body)))
        for name, value in resp.headers:
            self.send_header(name, value)
        self.end_headers()
        if resp.body and self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, app: App, tls: ssl.SSLContext | None,
                 latency: float = 0.0) -> None:
        self.app = app
        self.tls = tls
        self.latency = latency
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | ssl.SSLError):
            return  # a client that gave up (timeouts, dropped-connection tests): not news
        super().handle_error(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request.settimeout(30)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return  # a client that does not trust our CA; nothing to answer
        super().finish_request(request, client_address)


class HttpServer:
    """One API on 127.0.0.1, served from a background thread until `stop()`."""

    def __init__(self, app: App, port: int = 0, tls: ssl.SSLContext | None = None,
                 latency: float = 0.0) -> None:
        """`latency`: seconds added to every answer (a CRM across the internet)."""
        self._server = _Server(port, app, tls, latency)
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-{self.port}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Release the port of a server that was never started."""
        self._server.server_close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
