"""The server: overlays loaded, the HTTP listener in a thread, and a clean stop.

::

    from fastml_lab.serve import Server
    with Server(["jet_mlp"], backend="software", port=0) as server:   # port 0: any free port
        print(server.url)                                             # http://127.0.0.1:PORT

``fastml_lab.serve.serve(...)`` does the same until Ctrl-C, as ``fastml-lab serve`` does.
"""

from __future__ import annotations

import logging
import select
import signal
import socket
import sys
import threading
import time
from http.server import ThreadingHTTPServer

from ..exceptions import ConfigError
from .errors import RequestError
from .handler import Handler
from .metrics import Metrics
from .model import ServedModel

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: Events one overlay call gathers at most, and how long the first request of a batch may wait for more (0:
#: it takes what queued while the previous call ran, as Triton does by default).
DEFAULT_MAX_BATCH = 1024
DEFAULT_MAX_DELAY_MS = 0.0
#: How long a request waits for its answer (its queue and its overlay call) before a 503.
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_BODY_MB = 16.0
EXTENSIONS = ("binary_tensor_data", "model_configuration")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    #: Connections the kernel queues before they are accepted (socketserver's 5 would make a burst of
    #: clients wait for a SYN to be sent again, a second later).
    request_queue_size = 128
    app = None

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("Connection from %s ended: %s", client_address, exc)
        else:
            log.exception("Unexpected error on the connection from %s.", client_address)


class _HTTPServerV6(_HTTPServer):
    address_family = socket.AF_INET6


class Server:
    """Serves overlay packages over the Open Inference Protocol (v2 REST, Triton's binary tensors).

    ``models``: package names or folders (loaded with :func:`fastml_lab.overlay.load` on
    ``backend`` and ``paths``; closed when the server stops) or open
    :class:`~fastml_lab.overlay.accelerator.Accelerator` objects (served as they are, left open).
    ``max_batch`` / ``max_delay_ms``: dynamic batching (``max_batch=1``: every request alone);
    ``timeout_s``: how long a request waits for its answer; ``max_body_mb``: the largest request
    body; ``drain_timeout_s``: how long :meth:`stop` lets requests in flight finish.
    """

    def __init__(self, models, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, backend: str = "auto",
                 paths=(), max_batch: int = DEFAULT_MAX_BATCH, max_delay_ms: float = DEFAULT_MAX_DELAY_MS,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_body_mb: float = DEFAULT_MAX_BODY_MB,
                 drain_timeout_s: float | None = None):
        if isinstance(models, (str, bytes)) or not hasattr(models, "__iter__"):
            models = [models]
        self._sources = list(models)
        if not self._sources:
            raise ConfigError("Name at least one overlay package to serve.")
        for name, value, low in (("max_batch", max_batch, 1), ("port", port, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}; got {value!r}.")
        for name, value in (("max_delay_ms", max_delay_ms), ("timeout_s", timeout_s), ("max_body_mb", max_body_mb)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ConfigError(f"{name} must be a number >= 0; got {value!r}.")
        if timeout_s <= 0 or max_body_mb <= 0:
            raise ConfigError("timeout_s and max_body_mb must be positive.")
        self.host, self.port = host, int(port)
        self.backend, self.paths = backend, list(paths)
        self.max_batch, self.max_delay_ms, self.timeout_s = int(max_batch), float(max_delay_ms), float(timeout_s)
        self.max_body_bytes = int(max_body_mb * (1 << 20))
        self.drain_timeout_s = float(timeout_s if drain_timeout_s is None else drain_timeout_s)
        self.metrics = Metrics()
        self.models = {}
        self.closing = False
        self._httpd = None
        self._thread = None
        self._stopped = threading.Event()
        self._connections = {}
        self._connections_lock = threading.Lock()

    # ------------------------------------------------------------------ lifetime
    def start(self) -> "Server":
        """Load the overlays and start listening; returns the server."""
        if self._httpd is not None:
            return self
        try:
            for source in self._sources:
                self._add(source)
            server_class = _HTTPServerV6 if ":" in self.host else _HTTPServer
            try:
                self._httpd = server_class((self.host, self.port), Handler)
            except OSError as exc:
                raise ConfigError(f"Cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; choose "
                                  "another port (0: any free one).") from None
        except BaseException:
            self._close_models()
            raise
        self._httpd.app = self
        self.port = self._httpd.server_address[1]
        self._stopped.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fastml-lab serve http", daemon=True)
        self._thread.start()
        log.info("Serving %s on %s.", ", ".join(self.models), self.url)
        return self

    def _add(self, source) -> None:
        from ..overlay import Accelerator, load

        if isinstance(source, Accelerator):
            accelerator, owned = source, False
        else:
            accelerator, owned = load(source, backend=self.backend, paths=self.paths), True
        if accelerator.name in self.models:
            if owned:
                accelerator.close()
            raise ConfigError(f"Two packages are named {accelerator.name!r}; a server serves each name once.")
        self.models[accelerator.name] = ServedModel(accelerator, self.metrics, self.max_batch,
                                                    self.max_delay_ms / 1e3, self.timeout_s, owned=owned)

    def stop(self) -> None:
        """Stop listening, let requests in flight finish (up to ``drain_timeout_s``), close idle
        connections, then the overlays the server opened. Safe to call twice."""
        if self._httpd is None:
            return
        self.closing = True
        self._httpd.shutdown()
        self._thread.join()
        self._drain(time.monotonic() + self.drain_timeout_s)
        self._httpd.server_close()
        self._httpd = None
        self._close_models()
        self._stopped.set()
        log.info("Stopped serving on %s.", self.url)

    def _drain(self, deadline: float) -> None:
        """Until ``deadline``: let busy connections answer, close idle ones (an idle one whose next
        request is already arriving gets to send it and is answered with ``Connection: close``)."""
        while True:
            with self._connections_lock:
                connections = list(self._connections.items())
            if not connections:
                return
            for handler, busy in connections:
                if not busy and (time.monotonic() >= deadline or not _readable(handler.connection)):
                    try:
                        handler.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)

    def _close_models(self) -> None:
        for model in self.models.values():
            try:
                model.close()
            except Exception:  # the others still close
                log.exception("Closing %s failed.", model.name)

    def wait(self) -> None:
        """Block until :meth:`stop` (from another thread); Ctrl-C raises KeyboardInterrupt here."""
        while not self._stopped.wait(0.25):
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ connections (the handler's calls)
    def _connection_opened(self, handler) -> None:
        with self._connections_lock:
            self._connections[handler] = False

    def _connection_closed(self, handler) -> None:
        with self._connections_lock:
            self._connections.pop(handler, None)

    def _connection_busy(self, handler, busy: bool) -> bool:
        """Note whether ``handler`` is answering a request; True when the server is stopping."""
        with self._connections_lock:
            if handler in self._connections:
                self._connections[handler] = busy
        return self.closing

    # ------------------------------------------------------------------ what the routes ask
    def model(self, name: str, version=None) -> ServedModel:
        """The served model ``name`` (at ``version``, if given), or a 404 naming what is served."""
        served = self.models.get(name)
        if served is None:
            raise RequestError(404, f"Unknown model {name!r}; this server serves "
                                    f"{', '.join(map(repr, self.models))}.")
        if version is not None and version != served.version:
            raise RequestError(404, f"Model {name!r} has no version {version!r}; it serves version "
                                    f"{served.version!r}.")
        return served

    def not_ready_reason(self):
        """Why the server takes no inference requests now, or None."""
        if self.closing:
            return "the server is stopping"
        for served in self.models.values():
            reason = served.not_ready_reason()
            if reason:
                return f"model {served.name!r}: {reason}"
        return None

    def server_metadata(self) -> dict:
        from .. import __version__

        return {"name": "fastml-lab", "version": __version__, "extensions": list(EXTENSIONS)}


def _readable(sock) -> bool:
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return False


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(models, announce=print, **options) -> None:
    """Serve ``models`` (see :class:`Server`) until Ctrl-C (SIGINT) or SIGTERM, then stop cleanly.

    ``announce`` receives one line with the URL once the server listens. SIGINT stops the server
    even where the process was started ignoring it (a shell's background job, ``cmd &``).
    """
    server = Server(models, **options)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _interrupt)):
            previous[signum] = signal.signal(signum, handler)
    try:
        server.start()
        names = ", ".join(f"{m.name} ({m.accelerator.backend})" for m in server.models.values())
        try:
            announce(f"Serving {names} on {server.url}/v2/models/... (Ctrl-C stops)")
            server.wait()
        except KeyboardInterrupt:
            announce("Stopping: finishing the requests in flight...")
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
