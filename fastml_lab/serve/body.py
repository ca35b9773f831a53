"""Reading a request's body within a size limit: ``Content-Length`` or chunked, then gzip or deflate.

A declared length beyond the limit is refused (413) before a byte of the body is read; a chunked or
compressed body is refused as soon as it grows past the limit. After a refusal the rest of the body
is unread, so the connection must close.
"""

from __future__ import annotations

import zlib

from .errors import RequestError

#: Content encodings a request may use (tritonclient's ``request_compression_algorithm``).
ENCODINGS = ("identity", "gzip", "deflate")


def too_large(size: int, limit: int, what: str = "The body") -> RequestError:
    return RequestError(413, f"{what} is {size:,} bytes; this server takes at most {limit:,} "
                             "(fastml-lab serve --max-body-mb); send the events in smaller requests.")


def declared_length(headers, limit: int):
    """The body's ``Content-Length`` (None when chunked); a 4xx when it is missing, malformed or too large."""
    encoding = (headers.get("Transfer-Encoding") or "").strip().lower()
    if encoding:
        if encoding != "chunked":
            raise RequestError(501, f"Transfer-Encoding {encoding!r} is not supported; send Content-Length "
                                    "or chunked.")
        return None
    value = headers.get("Content-Length")
    if value is None:
        raise RequestError(411, "The request has a body but no Content-Length.")
    try:
        length = int(value)
    except ValueError:
        raise RequestError(400, f"Content-Length must be a number of bytes; got {value!r}.") from None
    if length < 0:
        raise RequestError(400, f"Content-Length must not be negative; got {length}.")
    if length > limit:
        raise too_large(length, limit, "The declared body (Content-Length)")
    return length


def read_body(rfile, headers, limit: int) -> bytes:
    """The request body, decoded from its ``Content-Encoding``; at most ``limit`` bytes either way."""
    length = declared_length(headers, limit)
    data = _read_chunked(rfile, limit) if length is None else rfile.read(length)
    if length is not None and len(data) != length:
        raise RequestError(400, f"The body ended after {len(data)} of the {length} bytes Content-Length declares.")
    return decode(data, headers.get("Content-Encoding"), limit)


def _read_chunked(rfile, limit: int) -> bytes:
    parts, total = [], 0
    while True:
        line = rfile.readline(1026)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise RequestError(400, f"Malformed chunk size {line[:40]!r} in a chunked body.") from None
        if size < 0:
            raise RequestError(400, f"Negative chunk size {size} in a chunked body.")
        if size == 0:
            while rfile.readline(1026) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return b"".join(parts)
        total += size
        if total > limit:
            raise too_large(total, limit, "The chunked body")
        chunk = rfile.read(size)
        if len(chunk) != size:
            raise RequestError(400, "The chunked body ended inside a chunk.")
        parts.append(chunk)
        rfile.readline(3)  # the chunk's CRLF


def decode(data: bytes, encoding, limit: int) -> bytes:
    """``data`` uncompressed from ``encoding`` (gzip, deflate), refusing more than ``limit`` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return data
    if encoding not in ENCODINGS:
        raise RequestError(415, f"Content-Encoding {encoding!r} is not supported; use one of {', '.join(ENCODINGS)}.")
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise RequestError(400, f"The body is not valid {encoding} data ({exc}).") from None
    if len(out) > limit:
        raise RequestError(413, f"The body, uncompressed from {encoding}, is larger than this server takes "
                                f"({limit:,} bytes; fastml-lab serve --max-body-mb).")
    return out
