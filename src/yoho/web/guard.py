"""Request guard for a server meant to be reached from this machine's own browser only.

- Host header: only the names of this machine (DNS-rebinding defence: a web page elsewhere
  that points its own domain at 127.0.0.1 must not read patient images through it).
- Origin header, on requests that change something: must be this server's own origin, so a
  page from another site cannot upload, save or start jobs through the clinician's browser.
- Response headers: a Content-Security-Policy that lets the page load and contact only this
  server (nothing can be sent elsewhere even by mistake), no caching of API answers, no
  referrer, no framing, no embedding of our images by other sites.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestGuard", "BodyLimit", "SECURITY_HEADERS"]

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
}


def _host_name(value: str) -> str:
    """'host:port' or '[v6]:port' → host (lower case, IPv6 kept in brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class RequestGuard:
    """ASGI middleware implementing the checks above (pure ASGI: safe for SSE streams)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.allowed is not None and _host_name(host) not in self.allowed:
            await _refuse(send, 400, f"host {host[:80]!r} is not served by this server")
            return
        origin = headers.get("origin")
        if scope["method"] not in SAFE_METHODS and origin is not None:
            parts = urlsplit(origin)
            if origin == "null" or parts.netloc.lower() != host.lower():
                await _refuse(send, 403, "cross-origin request refused")
                return

        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    out.setdefault(key, value)
                if api:
                    out["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Caps every request body at `max_bytes`, answering with the API's JSON 413.

    Why not Starlette's RequestBodyLimitMiddleware: it answers in text/plain, and it replaces
    the response of a route that refused a declared Content-Length itself (the upload route's
    JSON error naming the file and the limit) by its own text.
    The cap is enforced as the body is read: a declared length above it is refused at the
    first read, a streamed body as soon as it passes it. The error raised inside the route's
    read is an HTTPException (FastAPI re-raises those from its body parsing, where any other
    error would become a 400), which the app turns into ``{"error": ...}`` with status 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.exceptions import HTTPException

        declared = Headers(scope=scope).get("content-length", "")
        limit = self.max_bytes
        seen = 0

        async def receive_capped() -> Message:
            nonlocal seen
            if declared.isdigit() and int(declared) > limit:
                raise HTTPException(
                    413, f"request body of {int(declared):,} bytes, above {limit:,}"
                )
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, f"request body above the limit of {limit:,} bytes")
            return message

        await self.app(scope, receive_capped, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
