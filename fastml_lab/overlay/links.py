"""PYNQ-style ``.link`` files: fetch a package's bitstream from a release URL, verified.

``<file>.link`` beside ``<file>`` holds ``{"<board>": {"url": ..., "md5sum": ...}}``, the
convention ``pynq get-notebooks`` and pynqutils follow. A fetch is refused unless:

* the URL is ``https://`` (no http, file, ftp or data URL, and no redirect to one), with at most
  :data:`MAX_REDIRECTS` redirects, and the server's certificate verifies (the system's CA store,
  ``$SSL_CERT_FILE``, or ``cafile``);
* the body is no larger than the size the manifest records for the file (exactly that size), or,
  for a package written before manifests recorded sizes, :data:`MAX_DOWNLOAD_BYTES`; a
  Content-Length over the limit is refused before anything is read, and the reading stops as soon
  as the body passes it (a server that lies about its length or gives none);
* the whole download (connection, headers and body) ends within ``timeout_s`` seconds: a timer
  shuts the connection down at the deadline, so a server that sends a byte a second fails on time;
* the bytes match the manifest's sha256 and, when the ``.link`` gives one, its md5 (PYNQ's check).

The download goes to a temporary file beside the target and is renamed onto it only after every
check passed; on any failure nothing is left in the package folder. The ``.link`` and the target
must lie inside the package folder (no ``..``, no absolute path, no symlink pointing out).

The client is the standard library's (``urllib.request`` over ``http.client`` and ``ssl``), as in
pynqutils' own ``.link`` download: this module runs on the board, where pynq 3.1 brings no HTTP
library (requests, urllib3 and httpx come with Jupyter, not with pynq, and the board-safe part of
fastml-lab imports numpy alone), and none of them bounds a whole download either (their timeouts
are per socket operation), so the deadline timer below would stay all the same.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import math
import re
import socket
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from .._io import atomic_destination
from ..exceptions import BoardError, ConfigError, FastMLError, IntegrityError
from . import manifest as mf

log = logging.getLogger(__name__)

#: The only URL scheme fetched.
SCHEME = "https"
#: The largest download when the manifest records no size (packages from before it did). A
#: Zynq-7020 (PYNQ-Z2) .bit is about 4 MB and its .hwh well under 1 MB; the largest Zynq
#: UltraScale+ bitstreams stay below 64 MiB too.
MAX_DOWNLOAD_BYTES = 64 << 20
#: The most redirects followed (each to an https URL) before a fetch is refused.
MAX_REDIRECTS = 5
#: Seconds a whole download may take (``fastml-lab fetch --timeout``).
DEFAULT_TIMEOUT_S = 60.0

_BLOCK = 1 << 16
_MD5 = re.compile(r"[0-9a-fA-F]{32}")


def _board_key(name: str) -> str:
    return name.lower().replace("_", "-")


def check_url(url, where) -> str:
    """``url`` if it is an ``https://`` URL with a host; ConfigError naming ``where`` otherwise."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme.lower() != SCHEME or not parts.hostname:
        raise ConfigError(f"{where}: refusing to fetch {url!r}: only https:// URLs (with a host) "
                          "are accepted.")
    return url


def write_link(package_path, role: str, url: str, board: str = None) -> Path:
    """Write ``<file>.link`` for the package's existing ``bit`` or ``hwh`` file; returns its path.

    ``url`` must be an ``https://`` URL (what :func:`fetch_bitstream` accepts).
    """
    package_path = Path(package_path)
    manifest = mf.read(package_path)
    entry = (manifest.get("bitstream") or {}).get(role)
    if entry is None:
        raise ConfigError(f"The package {package_path} has no {role!r} file to link.")
    target = mf.safe_member(package_path, entry["path"])
    link = mf.safe_member(package_path, entry["path"] + ".link")
    check_url(url, link)
    board = board or manifest["board"]
    mf.write_json_atomic(link, {board: {"url": url, "md5sum": mf.md5_file(target)}})
    return link


def read_link(link_path, board: str) -> dict:
    """The ``{url, md5sum}`` entry of a ``.link`` file for ``board`` (case-insensitive).

    ConfigError for an unreadable file, no entry for ``board``, a URL that is not ``https://``,
    or an ``md5sum`` that is not 32 hex digits. ``md5sum`` may be absent.
    """
    try:
        data = json.loads(Path(link_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ConfigError(f"Cannot read {link_path}: {exc}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{link_path} must hold a JSON object {{board: {{url, md5sum}}}}; "
                          f"got {type(data).__name__}.")
    for key, entry in data.items():
        if _board_key(key) == _board_key(board):
            if not isinstance(entry, dict) or "url" not in entry:
                raise ConfigError(f"{link_path}: the entry for {key!r} needs a 'url'.")
            check_url(entry["url"], link_path)
            md5 = entry.get("md5sum")
            if md5 is not None and not (isinstance(md5, str) and _MD5.fullmatch(md5)):
                raise ConfigError(f"{link_path}: md5sum must be 32 hex digits; got {md5!r}.")
            return entry
    raise ConfigError(f"{link_path} has no entry for board {board!r}; it lists "
                      f"{', '.join(data) or 'nothing'}.")


def fetch_bitstream(package_path, timeout_s: float = DEFAULT_TIMEOUT_S, max_bytes: int = None,
                    cafile=None) -> list:
    """Download every manifest-listed bitstream file that is missing and has a ``.link``.

    Returns the paths fetched (empty when nothing was missing or a missing file has no ``.link``).
    Each download must be an ``https://`` URL, end within ``timeout_s`` seconds, be no larger than
    the size the manifest records (or ``max_bytes``, default :data:`MAX_DOWNLOAD_BYTES`, when it
    records none) and match the manifest's sha256, and the ``.link``'s md5 when it gives one: a
    ``.link`` without ``md5sum`` is accepted, since the manifest's sha256 is always required and
    checked. Only then is the file renamed into place; a failure leaves the package as it was.
    ``cafile``: a PEM file of certificates to trust instead of the system's (the system's store
    honours ``$SSL_CERT_FILE``).

    ConfigError for a refused URL or ``.link``; IntegrityError for a path outside the package, a
    size or checksum that does not match; BoardError for a download that fails or runs out of time.
    """
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) \
            or not math.isfinite(timeout_s) or timeout_s <= 0:
        raise ConfigError(f"The fetch timeout must be a positive number of seconds; got {timeout_s!r}.")
    if max_bytes is None:
        max_bytes = MAX_DOWNLOAD_BYTES
    elif isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ConfigError(f"max_bytes must be a positive number of bytes; got {max_bytes!r}.")
    package_path = Path(package_path)
    manifest = mf.read(package_path)
    board = manifest["board"]
    fetched = []
    for role in ("bit", "hwh"):
        entry = (manifest.get("bitstream") or {}).get(role)
        if entry is None:
            continue
        target = mf.safe_member(package_path, entry["path"])
        link = mf.safe_member(package_path, entry["path"] + ".link")
        if target.is_file() or not link.is_file():
            continue
        source = read_link(link, board)
        size = entry.get("size")
        _download(source["url"], target, timeout_s, link=link, cafile=cafile,
                  limit=size if size is not None else max_bytes, exact=size is not None,
                  md5=source.get("md5sum"), sha256=entry["sha256"])
        fetched.append(target)
    return fetched


# ------------------------------------------------------------------------------ the download
class _Deadline:
    """The whole download's time limit. A socket timeout bounds each read alone, so a server that
    sends a byte a second never trips it; at the deadline this timer shuts down every connection
    the download made, which ends whatever TLS handshake, header line or read is waiting."""

    def __init__(self, seconds: float):
        self.seconds, self.expired, self._sockets, self._lock = seconds, False, [], threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def connect(self, *args, **kwargs):
        """http.client's ``socket.create_connection``, watching a duplicate of the socket's
        descriptor (the TLS layer takes the original over)."""
        sock = socket.create_connection(*args, **kwargs)
        with self._lock:
            self._sockets.append(sock.dup())
            if self.expired:
                _shutdown(self._sockets[-1])
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _HTTPSHandler(urllib.request.HTTPSHandler):
    """Opens each connection with the deadline watching its socket."""

    def __init__(self, context: ssl.SSLContext, deadline: _Deadline):
        super().__init__(context=context)
        self._deadline = deadline

    def https_open(self, req):
        return self.do_open(self._connection, req, context=self._context)

    def _connection(self, *args, **kwargs) -> http.client.HTTPSConnection:
        connection = http.client.HTTPSConnection(*args, **kwargs)
        connection._create_connection = self._deadline.connect
        return connection


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows at most MAX_REDIRECTS redirects, each to an https URL, without reading their bodies."""

    max_repeats = max_redirections = MAX_REDIRECTS + 1  # this class's own count refuses first

    def __init__(self, link):
        self._link = link

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location is None:
            return None
        new_url = urljoin(req.full_url, location.strip())
        fp.close()  # the base class would read the whole body of the redirect
        if urlsplit(new_url).scheme.lower() != SCHEME:
            raise ConfigError(f"{self._link}: {req.full_url} redirects to {new_url!r}; refusing to "
                              "follow it: only https:// URLs are accepted.")
        hops = sum(getattr(req, "redirect_dict", {}).values())
        if hops >= MAX_REDIRECTS:
            raise BoardError(f"{req.full_url} redirects again after {hops} redirects; refusing to "
                             f"follow more than {MAX_REDIRECTS}.")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _download(url: str, target: Path, timeout_s: float, link, cafile, limit: int, exact: bool,
              md5, sha256: str) -> None:
    check_url(url, link)
    what = (f"the {limit} bytes the manifest records for {target.name}" if exact
            else f"the {limit}-byte limit for a download")
    log.debug("Fetching %s -> %s", url, target)
    context = ssl.create_default_context(cafile=str(cafile) if cafile is not None else None)
    with _Deadline(timeout_s) as deadline:
        # https alone (no http, ftp, file or data handler), through the environment's proxy if any
        opener = urllib.request.OpenerDirector()
        for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(),
                        _HTTPSHandler(context, deadline), _RedirectHandler(link),
                        urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
            opener.add_handler(handler)
        try:
            with opener.open(url, timeout=timeout_s) as response:
                length = response.headers.get("Content-Length")
                length = int(length) if length is not None and length.strip().isdigit() else None
                if length is not None and (length > limit or exact and length != limit):
                    raise IntegrityError(f"{url} announces {length} bytes (Content-Length), not "
                                         f"{what}; nothing was downloaded.")
                _receive(response, url, target, limit, exact, what, length, md5, sha256, deadline)
        except FastMLError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            reason = exc
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # it holds the error page's open response
            elif isinstance(exc, urllib.error.URLError):
                reason = exc.reason  # the error urllib wrapped
            if deadline.expired:
                raise _out_of_time(url, deadline) from None
            raise BoardError(f"Could not fetch {url}: {reason}; nothing was written.") from None


def _out_of_time(url, deadline: _Deadline) -> BoardError:
    return BoardError(f"Could not fetch {url} within the time limit of {deadline.seconds:g} s "
                      "(fetch --timeout); nothing was written.")


def _receive(response, url, target: Path, limit: int, exact: bool, what: str, length, md5, sha256,
             deadline: _Deadline) -> None:
    """Stream the body into a temporary file beside ``target``; rename it only once it checks out."""
    digests = hashlib.md5(), hashlib.sha256()
    received = 0
    with atomic_destination(target) as tmp:
        with open(tmp, "wb") as out:
            while block := response.read1(_BLOCK):
                received += len(block)
                if received > limit:
                    raise IntegrityError(f"{url} sent more than {what} ({received} bytes so far); "
                                         "stopped reading, nothing was written.")
                for digest in digests:
                    digest.update(block)
                out.write(block)
        if deadline.expired:  # the deadline shut the connection: the body may look complete but is not
            raise _out_of_time(url, deadline)
        if length is not None and received != length:
            raise BoardError(f"{url} ended after {received} of the {length} bytes it announced; "
                             "nothing was written.")
        if exact and received != limit:
            raise IntegrityError(f"{url} sent {received} bytes, not {what}; nothing was written.")
        if md5 and digests[0].hexdigest() != md5.lower():
            raise IntegrityError(f"The file downloaded from {url} has md5 {digests[0].hexdigest()}, but "
                                 f"the .link file expects {md5}; nothing was written.")
        if digests[1].hexdigest() != sha256:
            raise IntegrityError(f"The file downloaded from {url} has sha256 {digests[1].hexdigest()[:16]}..., "
                                 f"but the manifest records {sha256[:16]}... for {target.name}; "
                                 "nothing was written.")
