"""Errors the web API reports to the client as a 4xx JSON body ``{"error": message}``."""

from __future__ import annotations

__all__ = [
    "WebError",
    "BadRequest",
    "NotFound",
    "Conflict",
    "TooLarge",
    "UnsupportedMedia",
    "Unprocessable",
    "Busy",
]


class WebError(Exception):
    """A client error with its HTTP status; the message is shown to the user as is."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(WebError):
    status = 400


class NotFound(WebError):
    status = 404


class Conflict(WebError):
    status = 409


class TooLarge(WebError):
    status = 413


class UnsupportedMedia(WebError):
    status = 415


class Unprocessable(WebError):
    status = 422


class Busy(WebError):
    status = 429
