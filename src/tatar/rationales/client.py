"""Async client for OpenAI-compatible chat-completions endpoints (vLLM serve, hosted APIs).

Bounded concurrency (a semaphore), retries with exponential backoff and jitter on 429, 5xx,
timeouts and connection errors, honouring Retry-After. The backoff loop is written out rather
than taken from a retry library because it must read Retry-After from the response and count
attempts per call for the run summary; it is a dozen lines.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_STATUS = frozenset({408, 409, 425, 429})  # plus every 5xx


@dataclass(frozen=True)
class ChatReply:
    """A successful completion."""

    text: str
    finish_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)
    attempts: int = 1
    model: str | None = None
    latency_s: float = 0.0


class ChatCallError(Exception):
    """A call that failed for good: a non-retryable status or retries exhausted."""

    def __init__(self, message: str, *, code: str, attempts: int, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.attempts = attempts
        self.status = status


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_delay(
    attempt: int,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Wait before retry number `attempt` (1 = first retry).

    Exponential (base * 2^(attempt-1), capped at max) with "equal jitter" (half fixed, half
    random) so that clients hit by the same 429 do not come back together; never shorter than
    the server's Retry-After (itself capped at max).
    """
    cap = min(max_s, base_s * 2 ** (attempt - 1))
    rng = rng or random
    delay = cap / 2 + rng.uniform(0, cap / 2)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, max_s))
    return delay


def _reply_from(payload: Any) -> tuple[str, str | None, dict[str, int], str | None]:
    if not isinstance(payload, dict) or not payload.get("choices"):
        raise ValueError("no 'choices' in the response")
    choice = payload["choices"][0]
    message = choice["message"]
    text = message.get("content")
    if text is None:
        text = ""  # e.g. a reasoning model that spent every token thinking
    if isinstance(text, list):  # some servers return content parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if not isinstance(text, str):
        raise ValueError("'message.content' is not text")
    usage = payload.get("usage") or {}
    usage = {
        k: int(usage[k])
        for k in ("prompt_tokens", "completion_tokens")
        if isinstance(usage.get(k), (int, float))
    }
    return text, choice.get("finish_reason"), usage, payload.get("model")


class ChatClient:
    """POST /chat/completions with a concurrency bound and retries.

    Parameters
    ----------
    base_url : e.g. `http://127.0.0.1:8000/v1` (the path `/chat/completions` is appended).
    api_key : sent as a bearer token when given; never logged.
    timeout_s : per-attempt timeout (connect, read, write, pool).
    max_retries : retries after the first attempt (so at most max_retries + 1 attempts).
    backoff_s, backoff_max_s : exponential backoff base and cap.
    concurrency : requests in flight at once through this client.
    transport : an httpx transport (tests).
    sleep : the coroutine used to wait between attempts (tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        backoff_max_s: float = 60.0,
        concurrency: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers=headers,
            transport=transport,
        )

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(self, body: dict[str, Any]) -> ChatReply:
        """Send one chat-completions request; raise ChatCallError when it fails for good.

        The concurrency slot is held through the backoff waits too, so a server answering 429
        sees fewer requests rather than the same number rescheduled.
        """
        async with self._slots:
            start = time.monotonic()
            attempt = 0
            while True:
                attempt += 1
                status: int | None = None
                retry_after = None
                try:
                    resp = await self._http.post(self.url, json=body)
                except httpx.TimeoutException:
                    code, message = "timeout", f"no answer within {self.timeout_s:g} s"
                except httpx.TransportError as e:
                    code, message = "connection", f"{type(e).__name__}: {e}"
                else:
                    status = resp.status_code
                    if status == 200:
                        try:
                            text, finish, usage, model = _reply_from(resp.json())
                        except (ValueError, KeyError, IndexError, TypeError) as e:
                            code, message = "bad_response", f"malformed response: {e}"
                        else:
                            return ChatReply(
                                text=text,
                                finish_reason=finish,
                                usage=usage,
                                attempts=attempt,
                                model=model,
                                latency_s=time.monotonic() - start,
                            )
                    else:
                        code = f"http_{status}"
                        message = f"HTTP {status}: {resp.text[:300].strip()}"
                        retry_after = retry_after_seconds(resp.headers.get("retry-after"))
                        if status not in RETRY_STATUS and status < 500:
                            raise ChatCallError(message, code=code, attempts=attempt, status=status)
                if attempt > self.max_retries:
                    raise ChatCallError(
                        f"{message} (gave up after {attempt} attempts)",
                        code=code,
                        attempts=attempt,
                        status=status,
                    )
                await self._sleep(
                    backoff_delay(
                        attempt, self.backoff_s, self.backoff_max_s, retry_after, self._rng
                    )
                )
