"""The HTTP side: the Open Inference Protocol's REST routes over the standard library's
``http.server``, HTTP/1.1 with keep-alive, one JSON error body per refusal, one log line per request.

The handler reaches the models, the metrics and the limits through ``self.server.app`` (a
:class:`~fastml_lab.serve.server.Server`).
"""

from __future__ import annotations

import logging
import re
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlsplit

from .body import declared_length, read_body
from .errors import RequestError, message_of, status_of
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .protocol import HEADER_LENGTH, encode_infer, json_bytes, parse_infer

log = logging.getLogger("fastml_lab.serve.requests")

_MODEL = r"/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?"
#: (method, path pattern, handler method name)
ROUTES = (
    ("GET", re.compile(r"/v2/?"), "_server_metadata"),
    ("GET", re.compile(r"/v2/health/live"), "_live"),
    ("GET", re.compile(r"/v2/health/ready"), "_ready"),
    ("GET", re.compile(_MODEL + r"/?"), "_model_metadata"),
    ("GET", re.compile(_MODEL + r"/ready"), "_model_ready"),
    ("GET", re.compile(_MODEL + r"/config"), "_model_config"),
    ("POST", re.compile(_MODEL + r"/infer"), "_infer"),
    ("GET", re.compile(r"/metrics"), "_metrics"),
)
ENDPOINTS = "/v2, /v2/health/{live,ready}, /v2/models/{m}[/versions/{v}][/ready|/config|/infer], /metrics"


class Handler(BaseHTTPRequestHandler):
    """One connection; its requests are answered one after the other."""

    protocol_version = "HTTP/1.1"
    server_version = "fastml-lab"
    sys_version = ""
    disable_nagle_algorithm = True
    #: Seconds an idle keep-alive connection (or a slow body) may wait before it is closed.
    timeout = 60

    # ------------------------------------------------------------------ connection bookkeeping
    def setup(self):
        super().setup()
        self.server.app._connection_opened(self)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.app._connection_closed(self)

    def parse_request(self):
        self.server.app._connection_busy(self, True)
        self._started = time.perf_counter()
        self._status, self._sent, self._body = None, 0, None
        self._body_unread, self._extra_headers = False, []
        return super().parse_request()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        finally:
            if self.server.app._connection_busy(self, False):
                self.close_connection = True

    def handle_expect_100(self):
        try:
            declared_length(self.headers, self.server.app.max_body_bytes)
        except RequestError as exc:
            self._refuse(exc)
            return False
        return super().handle_expect_100()

    def log_request(self, code="-", size="-"):
        """Replaced by the one line :meth:`_log` writes when the answer is sent."""

    def log_message(self, format, *args):
        log.debug("%s %s", self.address_string(), format % args)

    def send_error(self, code, message=None, explain=None):
        """The base class's refusals (a malformed request line, an unknown method) as JSON."""
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # answer with a status line, as no client speaks HTTP/0.9
        self._send_json(code, {"error": message or explain or self.responses.get(code, ("error",))[0]})
        self._log()

    # ------------------------------------------------------------------ dispatch
    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    def _dispatch(self):
        try:
            self._read_body()
            path = urlsplit(self.path).path
            matches = [(method, name, m) for method, pattern, name in ROUTES
                       if (m := pattern.fullmatch(path))]
            if not matches:
                raise RequestError(404, f"No endpoint {path!r}; this server answers {ENDPOINTS}.")
            chosen = [(name, m) for method, name, m in matches if method == self.command]
            if not chosen:
                allowed = ", ".join(sorted({method for method, _, _ in matches}))
                self._extra_headers = [("Allow", allowed)]
                raise RequestError(405, f"{self.command} is not allowed on {path}; use {allowed}.")
            name, match = chosen[0]
            args = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            getattr(self, name)(**args)
        except Exception as exc:
            if self._status is not None:  # the answer went out, or began to: the client went away
                log.debug("%s %s: %s after the answer", self.command, self.path, message_of(exc))
                self.close_connection = True
                return
            self._refuse(exc)

    def _read_body(self):
        has_body = self.headers.get("Content-Length") not in (None, "0") or self.headers.get("Transfer-Encoding")
        if not has_body:
            self._body = b""
            return
        self._body_unread = True
        self._body = read_body(self.rfile, self.headers, self.server.app.max_body_bytes)
        self._body_unread = False

    def _refuse(self, exc):
        status = status_of(exc)
        if status >= 500 and not isinstance(exc, RequestError):
            level = logging.ERROR if status == 500 else logging.WARNING
            log.log(level, "%s %s failed: %s", self.command, self.path, message_of(exc),
                    exc_info=status == 500)
        if getattr(self, "_body_unread", False) or status in (411, 413):
            self.close_connection = True
        self._send_json(status, {"error": message_of(exc)})
        self._log()

    # ------------------------------------------------------------------ answers
    def _send(self, status: int, body: bytes, content_type: str, headers=()):
        self._status = status
        self.server.app.metrics.add("fastml_lab_http_responses", (("code", str(status)),))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in list(headers) + getattr(self, "_extra_headers", []):
            self.send_header(key, value)
        self._extra_headers = []
        if self.close_connection or self.server.app.closing:
            self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)
        self._sent = len(body)

    def _send_json(self, status: int, value, headers=()):
        self._send(status, json_bytes(value), "application/json", headers)

    def _log(self):
        started = getattr(self, "_started", None)
        ms = (time.perf_counter() - started) * 1e3 if started else 0.0
        log.info('%s "%s %s" %s %d %.2f ms', self.address_string(), getattr(self, "command", None) or "-",
                 getattr(self, "path", None) or "-", self._status, self._sent, ms)

    def _reply(self, status: int, value, headers=()):
        self._send_json(status, value, headers)
        self._log()

    # ------------------------------------------------------------------ routes
    def _server_metadata(self):
        self._reply(200, self.server.app.server_metadata())

    def _live(self):
        self._reply(200, {"live": True})

    def _ready(self):
        reason = self.server.app.not_ready_reason()
        if reason:
            raise RequestError(400, f"Not ready: {reason}.")
        self._reply(200, {"ready": True})

    def _model_metadata(self, model, version=None):
        self._reply(200, self.server.app.model(model, version).metadata())

    def _model_ready(self, model, version=None):
        served = self.server.app.model(model, version)
        reason = served.not_ready_reason()
        if reason:
            raise RequestError(400, f"Model {served.name!r} is not ready: {reason}.")
        self._reply(200, {"name": served.name, "ready": True})

    def _model_config(self, model, version=None):
        self._reply(200, self.server.app.model(model, version).config())

    def _metrics(self):
        self._send(200, self.server.app.metrics.render().encode("utf-8"), METRICS_CONTENT_TYPE)
        self._log()

    def _infer(self, model, version=None):
        served = self.server.app.model(model, version)
        metrics, labels = served.metrics, served.labels
        try:
            request = parse_infer(self._body, self.headers.get(HEADER_LENGTH), served.name, served.input,
                                  served.output)
            outputs, queued_s = served.infer(request.events)
            body, header_length = encode_infer(served.name, served.version, request, served.output, outputs)
        except Exception as exc:
            reason = "REJECTED" if status_of(exc) < 500 else "BACKEND"
            metrics.add("nv_inference_request_failure", labels + (("reason", reason),))
            raise
        seconds = time.perf_counter() - self._started  # counted before the answer leaves, so a client
        metrics.add("nv_inference_request_success", labels)  # that reads /metrics next sees it
        metrics.add("nv_inference_count", labels, outputs.shape[0])
        metrics.add("nv_inference_request_duration_us", labels, round(seconds * 1e6))
        metrics.add("nv_inference_queue_duration_us", labels, round(queued_s * 1e6))
        metrics.observe("nv_inference_request_latency_ms", labels, seconds * 1e3)
        if header_length is None:
            self._send(200, body, "application/json")
        else:
            self._send(200, body, "application/octet-stream", [(HEADER_LENGTH, str(header_length))])
        self._log()
