"""A bearer token (WLCG/IAM JWT) that renews itself, for HTTP tape endpoints.

IAM access tokens live about an hour; an oidc-agent or a token-renewal service keeps a
fresh one in a file (``BEARER_TOKEN_FILE`` convention) or a callable hands out a new
one. :class:`BearerToken` gives the current token and renews it

- before it expires: the JWT's ``exp`` claim is read (not verified: the server does
  that) and a token within ``margin`` seconds of expiry is renewed;
- when the server says 401: :meth:`BearerToken.renew` re-reads the file or calls the
  refresh callable, and the caller retries once if the token changed.

The token never appears in a repr or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from pathlib import Path


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (Unix seconds) of a JWT, None for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


class BearerToken:
    """The current bearer token from exactly one source: a refresh callable, a token
    file (re-read when renewed), or a fixed value."""

    def __init__(
        self,
        *,
        value: str | None = None,
        path: str | Path | None = None,
        refresh: Callable[[], str] | None = None,
        margin: float = 60.0,
    ) -> None:
        if sum(source is not None for source in (value, path, refresh)) != 1:
            raise ValueError("give exactly one of value, path or refresh")
        self._refresh = refresh
        self.path = Path(path) if path is not None else None
        self.margin = margin
        self._token: str | None = value.strip() if value is not None else None

    def __repr__(self) -> str:
        source = (
            f"path={str(self.path)!r}" if self.path else "refresh" if self._refresh else "value"
        )
        return f"BearerToken({source})"

    def _load(self) -> str:
        if self._refresh is not None:
            token = self._refresh()
        elif self.path is not None:
            try:
                token = self.path.read_text()
            except OSError as error:
                raise PermissionError(
                    f"cannot read the bearer token file {self.path}: {error}"
                ) from error
        else:
            assert self._token is not None
            token = self._token
        token = token.strip()
        if not token:
            raise PermissionError(f"empty bearer token from {self!r}")
        return token

    def _expiring(self, token: str) -> bool:
        exp = jwt_expiry(token)
        return exp is not None and exp - time.time() < self.margin

    def get(self) -> str:
        """The token to send now (renewed first if it is about to expire)."""
        if self._token is None or self._expiring(self._token):
            self._token = self._load()
        return self._token

    def renew(self) -> bool:
        """After a 401: load the token again; True if it changed (worth one retry)."""
        old = self._token
        self._token = self._load()
        return self._token != old
