"""The service's front door, as one ASGI middleware (pure ASGI: no body buffering).

- **Auth**: every path except the probes, ``/metrics`` and the API docs needs
  ``Authorization: Bearer <LEADCAST_API_TOKEN>`` (compared in constant time) → else 401.
  The review page ``GET /ui`` is opened by a browser, which cannot send that header: it
  also accepts the token once as ``?token=…`` (answered by a redirect that drops it from
  the address and sets it as an ``HttpOnly``, ``SameSite=Strict`` cookie scoped to
  ``/ui``) and then from that cookie; without it, a short HTML page says what to do.
- **JSON only**: a request with a body must say ``Content-Type: application/json`` → else
  415 (pickle, form data, text, … are refused before anything reads them).
- **Body cap**: a declared ``Content-Length`` over the cap → 413 at once; a streamed body
  is counted as it arrives and cut off with 413 when it passes the cap.
- ``GET /docs.json`` is BentoML's OpenAPI document corrected by
  :func:`serving.openapi.patch_openapi`;
- ``GET /readyz`` answers with JSON details (which path scores each kind, and why) from
  the :class:`ServiceState` the service fills in once its models are loaded;
- **direct routes**: a request that passed the checks above and matches one of
  ``direct`` (method, path) goes to that ASGI handler instead of BentoML's dispatch — the
  hot path (``POST /v1/leads/score``) skips BentoML's routing, thread hop and response
  machinery. BentoML's traffic limits (504, 429) and metrics sit outside this middleware
  and still apply.

Every refusal is JSON: ``{"error": code, "message": what went wrong and what to do}``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from serving.openapi import patch_openapi

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths anyone may call (probes, metrics, the OpenAPI document and BentoML's Swagger UI at
#: ``/`` with its static files); everything they show is public documentation.
OPEN_PATHS: Final = frozenset({"/", "/livez", "/healthz", "/readyz", "/metrics", "/docs.json"})
OPEN_PREFIXES: Final = ("/static_content/",)
JSON_TYPES: Final = ("application/json",)
UI_PATH: Final = "/ui"
UI_COOKIE: Final = "leadcast_token"


@dataclass
class ServiceState:
    """What the worker serves, filled in by the service once it has loaded its models."""

    ready: bool = False
    details: dict[str, Any] = field(default_factory=dict)


STATE = ServiceState()


class BodyTooLargeError(Exception):
    pass


async def _respond(
    send: Send, status: int, data: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """One whole response: ``headers`` plus the content length, then ``data``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _reply(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _respond(
        send,
        status,
        json.dumps(body).encode(),
        [(b"content-type", b"application/json"), *(headers or [])],
    )


_UI_DENIED: Final = (
    "<!doctype html><html lang='en'><meta charset='utf-8'><title>Leadcast: sign in</title>"
    "<body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
    "<h1>Leadcast review page: the access token is missing or wrong</h1>"
    "<p>Open the address that <code>leadcast serve</code> (or <code>leadcast demo</code>) "
    "printed: it ends in <code>/ui?token=…</code>. The token is the service's "
    "<code>LEADCAST_API_TOKEN</code>.</p>"
    "<p lang='zh'>访问令牌缺失或错误：请打开 <code>leadcast serve</code> 打印的地址"
    "（以 <code>/ui?token=…</code> 结尾）。</p></body></html>"
)


async def _html_reply(
    send: Send, status: int, html: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    content = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]
    await _respond(send, status, html.encode(), [*content, *(headers or [])])


class Guard:
    """Auth, JSON-only, body cap and ``/readyz`` details (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        max_body_bytes: int,
        direct: dict[tuple[str, str], ASGIApp] | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.max_body = max_body_bytes
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/readyz" and scope.get("method") == "GET":
            status = 200 if STATE.ready else 503
            await _reply(send, status, {"ready": STATE.ready, **STATE.details})
            return
        if path == "/docs.json" and scope.get("method") == "GET":
            await self._patched_docs(scope, receive, send)
            return
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        if (path == UI_PATH or path.startswith(UI_PATH + "/")) and self.token is not None:
            await self._ui(scope, receive, send, headers)
            return
        if self.token is None:  # never serve unauthenticated by accident
            await _reply(
                send,
                503,
                {
                    "error": "no_token_configured",
                    "message": "the server has no LEADCAST_API_TOKEN; set it and restart",
                },
            )
            return
        given = headers.get(b"authorization", b"")
        if not hmac.compare_digest(given, b"Bearer " + self.token):
            await _reply(
                send,
                401,
                {
                    "error": "unauthorized",
                    "message": "missing or wrong bearer token: send the header "
                    "'Authorization: Bearer <LEADCAST_API_TOKEN>'",
                },
                [(b"www-authenticate", b'Bearer realm="leadcast"')],
            )
            return
        method = scope.get("method", "GET")
        length = headers.get(b"content-length")
        has_body = method in ("POST", "PUT", "PATCH") or (length not in (None, b"0"))
        if has_body:
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1")
            if kind.lower() not in JSON_TYPES:
                await _reply(
                    send,
                    415,
                    {
                        "error": "unsupported_media_type",
                        "message": f"content type {kind or '(none)'!r} is not accepted; send "
                        "JSON with 'Content-Type: application/json'",
                    },
                )
                return
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await _reply(send, 413, self._too_large())
                return
        await self._forward(self.direct.get((method, path), self.app), scope, receive, send)

    async def _patched_docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """BentoML's OpenAPI document, corrected (:func:`serving.openapi.patch_openapi`)."""
        status, chunks = 200, []

        async def collect(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        body = b"".join(chunks)
        if status != 200:
            await _reply(send, status, {"error": "docs_unavailable", "message": body.decode()})
            return
        await _reply(send, 200, patch_openapi(json.loads(body)))

    async def _ui(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        """The review page: bearer header, the cookie, or the token once in the query."""
        assert self.token is not None
        if scope.get("method") not in ("GET", "HEAD"):
            await _reply(send, 405, {"error": "method_not_allowed", "message": "use GET /ui"})
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        given = [v.encode() for k, v in query if k == "token"]
        if given:
            if not hmac.compare_digest(given[0], self.token):
                await _html_reply(send, 401, _UI_DENIED)
                return
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = UI_PATH + "/" + (f"?{rest}" if rest else "")
            cookie = f"{UI_COOKIE}={self.token.decode()}; Path={UI_PATH}; HttpOnly; SameSite=Strict"
            await _html_reply(
                send,
                303,
                "",
                [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
            )
            return
        cookies = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        from_cookie = cookies[UI_COOKIE].value.encode() if UI_COOKIE in cookies else b""
        bearer = headers.get(b"authorization", b"")
        if hmac.compare_digest(bearer, b"Bearer " + self.token) or hmac.compare_digest(
            from_cookie, self.token
        ):
            await self.app(scope, receive, send)
            return
        await _html_reply(send, 401, _UI_DENIED)

    def _too_large(self) -> dict[str, Any]:
        return {
            "error": "payload_too_large",
            "message": f"the request body is over {self.max_body:,} bytes; send fewer records "
            "per request",
        }

    async def _forward(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLargeError
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await app(scope, counted, tracked)
        except BodyTooLargeError:
            if not started:
                await _reply(send, 413, self._too_large())


__all__ = ["OPEN_PATHS", "STATE", "Guard", "ServiceState"]
