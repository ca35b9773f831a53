"""How a failed request is answered: one HTTP status per kind of error.

* :class:`RequestError` (raised by the server itself): the status it carries (400, 404, 405, 411,
  413, 415, 503);
* the overlay's :class:`~fastml_lab.exceptions.DataError` or ConfigError (the events it refuses): 400;
* a board that stops answering (:class:`~fastml_lab.exceptions.BoardError`, ``TimeoutError``) or an
  overlay that is closed (:class:`~fastml_lab.exceptions.NotReadyError`): 503;
* anything else: 500.
"""

from __future__ import annotations

from ..exceptions import BoardError, ConfigError, DataError, FastMLError, NotReadyError


class RequestError(FastMLError):
    """A request the server refuses; ``status`` is the HTTP status of the answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = int(status)


def status_of(exc: BaseException) -> int:
    """The HTTP status that answers a request which raised ``exc``."""
    if isinstance(exc, RequestError):
        return exc.status
    if isinstance(exc, (DataError, ConfigError)):
        return 400
    if isinstance(exc, (BoardError, TimeoutError, NotReadyError)):
        return 503
    return 500


def message_of(exc: BaseException) -> str:
    """The error text of the answer: the exception's own message, its type where it has none."""
    text = str(exc).strip()
    if isinstance(exc, FastMLError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
