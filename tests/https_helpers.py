"""A local HTTPS server for the fetch tests: a self-signed certificate for 127.0.0.1 made with the
``openssl`` command, and a threaded server on 127.0.0.1 whose routes a test sets. Nothing leaves
the machine."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def make_certificate(folder) -> tuple:
    """``(cert.pem, key.pem)`` in ``folder``: a self-signed certificate for 127.0.0.1 and localhost."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make the test server's certificate")
    folder = Path(folder)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


# ---------------------------------------------------------------------------------- routes
# A route is a function of the request handler that writes the whole response.
def body(data: bytes, content_length=True):
    """200 with ``data``; ``content_length``: True (the true length), False (none: the body ends
    when the connection closes) or a number (a lie)."""
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        if content_length is not False:
            handler.send_header("Content-Length", str(len(data) if content_length is True else content_length))
        handler.end_headers()
        handler.wfile.write(data)
    return route


def redirect(location: str, code: int = 302):
    def route(handler):
        handler.send_response(code)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return route


def endless(block: bytes = b"\xff" * 65536):
    """200 without Content-Length and a body that never ends (until the client hangs up)."""
    def route(handler):
        handler.send_response(200)
        handler.end_headers()
        while not handler.server.stopping.is_set():
            handler.wfile.write(block)
    return route


def drip(data: bytes, every_s: float, headers_too: bool = False):
    """``data`` one byte every ``every_s`` seconds (its headers too, status line first, with
    ``headers_too``): each byte comes well within a socket timeout, the whole never does."""
    def route(handler):
        head = f"HTTP/1.0 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        if headers_too:
            payload = head + data
        else:
            handler.wfile.write(head)
            payload = data
        for i in range(len(payload)):
            if handler.server.stopping.wait(every_s):
                return
            handler.wfile.write(payload[i:i + 1])
    return route


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the connection closes

    def do_GET(self):
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        route(self)

    def handle(self):
        try:
            super().handle()
        except (OSError, ssl.SSLError):  # the client hung up (a refusal, a deadline): expected here
            pass

    def log_message(self, *args):
        pass


class HTTPSServer:
    """``routes`` maps a request path to a route; any other path is a 404. ``requests`` lists the
    paths asked for, in order."""

    def __init__(self, cert, key):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.cert = cert  # what a client trusts (fetch_bitstream's cafile, $SSL_CERT_FILE)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        # the handshake runs in each request's thread, not in the accepting loop
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self._server.routes = self.routes = {}
        self._server.requests = self.requests = []
        self._server.stopping = threading.Event()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def reset(self) -> None:
        self.routes.clear()
        self.requests.clear()

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


