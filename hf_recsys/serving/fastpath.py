"""The hot path of the server: well-formed ``POST /recommend`` and ``/similar`` answered without FastAPI's routing.

A profile of ``hf-recsys serve`` under 64 concurrent clients (py-spy, EASE, 10k items; numbers in
``benchmarks/serving/README.md``) found the event loop thread, not the model, to be the limit: most of its time
went to FastAPI's and Starlette's per-request layers (routing, dependency solving, request-body plumbing). This
ASGI middleware sits in front of them: a ``POST`` to a fast route with a JSON body and, where the server has a
token, the right bearer token is validated with the same pydantic schema and submitted to the same micro-batcher.
Anything else, and any request the fast route fails on (a bad body, an unknown id, a wrong token), goes on to the
FastAPI app with its body intact, so every error answer (422 naming the field, 404, 401) is the app's own.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[bytes], Awaitable[Any]]

_HEADERS = [(b"content-type", b"application/json")]


def dumps(content: Any) -> bytes:
    """JSON bytes as Starlette's ``JSONResponse`` renders them."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


class FastPath:
    """ASGI middleware: ``routes`` maps a path to ``async handler(body) -> answer`` (a JSON-able object).

    Args:
        app: the ASGI app behind (FastAPI), which answers everything the fast routes do not.
        routes: ``{path: handler}`` for ``POST`` requests.
        token: the server's bearer token (``None``: open).
        max_body: bodies larger than this (bytes) go to the app.
    """

    def __init__(self, app, routes: dict[str, Handler], token: str | None = None, max_body: int = 1 << 20):
        self.app, self.routes, self.max_body = app, routes, max_body
        self.token = None if token is None else token.encode()

    async def __call__(self, scope, receive, send) -> None:
        handler = self.routes.get(scope.get("path")) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None or not self._accepts(scope["headers"]):
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
            if size > self.max_body:
                return await self.app(scope, _replay(b"".join(chunks), receive, more=True), send)
        body = b"".join(chunks)
        try:
            payload = dumps(await handler(body))
        except Exception:  # the app answers it, with its own error (and status)
            return await self.app(scope, _replay(body, receive), send)
        headers = [*_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _accepts(self, headers: list[tuple[bytes, bytes]]) -> bool:
        content_type, auth = b"", b""
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"authorization":
                auth = value
        if not content_type.split(b";")[0].strip().lower() == b"application/json":
            return False
        if self.token is None:
            return True
        scheme, _, value = auth.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(value, self.token)


def _replay(body: bytes, receive, more: bool = False):
    """A ``receive`` that hands out ``body`` first (then, if ``more``, the rest of the request), then ``receive``."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


__all__ = ["FastPath", "dumps"]
