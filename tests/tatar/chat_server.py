"""A real HTTP server on 127.0.0.1 that speaks the chat-completions protocol, for tests.

`POST /v1/chat/completions` answers from a script: each request is mapped by `key_of(body)` to
a (stage, key) pair, and the next scripted action for that pair is played (the last one
repeats). Actions:

    {"content": "...", "finish_reason": "stop"}   a normal answer
    {"status": 429, "retry_after": "0"}            an error status (any code), optional header
    {"raw": "not json"}                             a 200 whose body is not JSON
    {"sleep": 2.0, ...}                             wait first (past the client's timeout)
    {"delay": 0.1, ...}                             same as sleep; used for pacing

Every request is recorded (stage, key, Authorization header, body), and the highest number of
requests in flight at once is tracked: requests whose client is still waiting for the answer. A
request the client gave up on (it timed out and closed the connection) stops counting then, not
when the server's scripted pause ends; otherwise its retry would be counted twice, and the count
would exceed the client's concurrency bound by chance on a busy machine.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Action = dict[str, Any]


@dataclass
class Request:
    stage: str
    key: str
    authorization: str | None
    body: dict[str, Any]


class ScriptedChatServer:
    def __init__(
        self,
        key_of: Callable[[dict[str, Any]], tuple[str, str]],
        script: dict[tuple[str, str], list[Action]] | None = None,
        default: Callable[[str, str, dict[str, Any]], Action] | None = None,
    ):
        self.key_of = key_of
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.default = default
        self.requests: list[Request] = []
        self.max_in_flight = 0
        self._waiting: dict[object, socket.socket] = {}  # request -> its connection
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def __enter__(self) -> ScriptedChatServer:
        handler = self._handler_class()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- bookkeeping
    def count(self, stage: str | None = None, key: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (stage is None or r.stage == stage) and (key is None or r.key == key)
            )

    def keys(self, stage: str) -> list[str]:
        with self._lock:
            return [r.key for r in self.requests if r.stage == stage]

    def _next_action(self, stage: str, key: str, body: dict[str, Any]) -> Action:
        with self._lock:
            actions = self.script.get((stage, key))
            if actions:
                return actions.pop(0) if len(actions) > 1 else actions[0]
        if self.default is None:
            return {"status": 404, "body": f"no script for {stage}/{key}"}
        return self.default(stage, key, body)

    @staticmethod
    def _client_gone(conn: socket.socket) -> bool:
        """True when the client closed the connection (it waits for nothing any more)."""
        try:
            return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False  # open, nothing to read: the client is waiting
        except OSError:
            return True

    def _count_in(self, token: object, conn: socket.socket) -> None:
        # Called with the lock held. A client closes a timed-out connection before it sends the
        # retry, so by the time the retry arrives here the old connection reads as closed.
        for other, c in list(self._waiting.items()):
            if self._client_gone(c):
                del self._waiting[other]
        self._waiting[token] = conn
        self.max_in_flight = max(self.max_in_flight, len(self._waiting))

    def _pause(self, seconds: float, conn: socket.socket) -> None:
        """Sleep, but stop early when the client goes away (nobody waits for the answer)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.02))
            if self._client_gone(conn):
                return

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                if self.path != "/v1/chat/completions":
                    self._send(404, b'{"error": "not found"}')
                    return
                stage, key = server.key_of(body)
                with server._lock:
                    server.requests.append(
                        Request(stage, key, self.headers.get("Authorization"), body)
                    )
                    token = object()
                    server._count_in(token, self.connection)
                try:
                    action = server._next_action(stage, key, body)
                    pause = action.get("sleep", action.get("delay", 0.0))
                    if pause:
                        server._pause(pause, self.connection)
                    if "status" in action:
                        headers = {}
                        if action.get("retry_after") is not None:
                            headers["Retry-After"] = str(action["retry_after"])
                        msg = action.get("body", f"scripted status {action['status']}")
                        self._send(action["status"], json.dumps({"error": msg}).encode(), headers)
                    elif "raw" in action:
                        self._send(200, action["raw"].encode())
                    else:
                        payload = {
                            "id": f"chatcmpl-{stage}-{key}",
                            "object": "chat.completion",
                            "model": body.get("model"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": action["content"]},
                                    "finish_reason": action.get("finish_reason", "stop"),
                                }
                            ],
                            "usage": {
                                "prompt_tokens": 100,
                                "completion_tokens": len(action["content"].split()),
                                "total_tokens": 100 + len(action["content"].split()),
                            },
                        }
                        self._send(200, json.dumps(payload).encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer
                finally:
                    with server._lock:
                        server._waiting.pop(token, None)

        return Handler
