"""HTTP with a renewing bearer token: the one place tape endpoints send requests.

Every request carries ``Authorization: Bearer <token>``; on 401 the token is renewed
and, if it changed, the request is sent once more — with a fresh body when the body is
a stream (``content`` given as a factory), since a consumed stream cannot be replayed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx

from cygno.storage.tape.base import TapeError
from cygno.storage.tape.token import BearerToken


class TapeHttpError(TapeError):
    """The endpoint answered with an unexpected HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class TokenSession:
    """An ``httpx.Client`` that authenticates with a :class:`BearerToken` (or not at all)."""

    def __init__(
        self, token: BearerToken | None, *, verify: Any = True, timeout: float = 60.0
    ) -> None:
        self.token = token
        self.client = httpx.Client(verify=verify, timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def _build(
        self, method: str, url: str, headers: dict[str, str], body: Iterable[bytes] | None, **kw
    ) -> httpx.Request:
        headers = dict(headers)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.get()}"
        return self.client.build_request(method, url, headers=headers, content=body, **kw)

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: Callable[[], Iterable[bytes] | bytes] | None = None,
        stream: bool = False,
        **kw: Any,
    ) -> httpx.Response:
        """Send one request, renewing the token and retrying once on 401."""
        for attempt in (1, 2):
            body = content() if content is not None else None
            request = self._build(method, url, headers or {}, body, **kw)
            response = self.client.send(request, stream=stream)
            if response.status_code != 401 or attempt == 2 or self.token is None:
                return response
            if not self.token.renew():
                return response  # the same token again: the 401 stands
            response.close()
        raise AssertionError("unreachable")

    @staticmethod
    def expect(response: httpx.Response, *ok: int) -> httpx.Response:
        """``response`` if its status is one of ``ok``; else a :class:`TapeHttpError`
        naming the request and the status (never the token)."""
        if response.status_code in ok:
            return response
        if not response.is_stream_consumed:
            response.read()
        detail = response.text[:200].strip()
        raise TapeHttpError(
            f"{response.request.method} {response.request.url} answered "
            f"{response.status_code} {response.reason_phrase}" + (f": {detail}" if detail else ""),
            response.status_code,
        )
