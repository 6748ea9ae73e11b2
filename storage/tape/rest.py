"""Client of the WLCG Tape REST API (v1): stage requests, their polling, archive info.

The API (WLCG DOMA-BDT, implemented by StoRM, dCache and EOS/CTA) addresses files by
their path in the storage namespace, the path of their WebDAV URL:

- ``POST {base}/stage`` ``{"files": [{"path": …, "diskLifetime": …}]}`` → ``201``
  ``{"requestId": …}``;
- ``GET {base}/stage/{id}`` → the request with ``files: [{path, state, onDisk, error}]``,
  ``state`` one of ``SUBMITTED STARTED CANCELLED FAILED COMPLETED``;
- ``DELETE {base}/stage/{id}`` forgets a finished request;
- ``POST {base}/archiveinfo`` ``{"paths": […]}`` → ``[{path, locality} | {path, error}]``,
  ``locality`` one of ``DISK TAPE DISK_AND_TAPE LOST NONE UNAVAILABLE``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cygno.storage.tape.base import TapeError
from cygno.storage.tape.http import TokenSession

#: File states after which a stage request will not change any more.
_FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


class TapeStageError(TapeError):
    """A stage (recall) request failed, was cancelled or did not finish in time."""


class TapeRestClient:
    """The Tape REST API at ``url`` (``https://host:port/api/v1``)."""

    def __init__(
        self,
        url: str,
        session: TokenSession,
        *,
        poll_seconds: float = 10.0,
        timeout_seconds: float = 6 * 3600.0,
        disk_lifetime: str = "P1D",
    ) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.disk_lifetime = disk_lifetime

    def __repr__(self) -> str:
        return f"TapeRestClient({self.url!r})"

    def archiveinfo(self, paths: Sequence[str]) -> dict[str, dict]:
        """Path → the server's entry (``locality`` or ``error``) for each path."""
        response = self.session.send("POST", f"{self.url}/archiveinfo", json={"paths": list(paths)})
        entries = TokenSession.expect(response, 200).json()
        return {entry["path"]: entry for entry in entries}

    def stage(self, paths: Sequence[str]) -> str:
        """Submit a stage request; its id."""
        files = [{"path": path, "diskLifetime": self.disk_lifetime} for path in paths]
        response = self.session.send("POST", f"{self.url}/stage", json={"files": files})
        return TokenSession.expect(response, 201).json()["requestId"]

    def status(self, request_id: str) -> dict:
        return TokenSession.expect(
            self.session.send("GET", f"{self.url}/stage/{request_id}"), 200
        ).json()

    def wait(self, request_id: str) -> None:
        """Poll a stage request until every file is on disk; :class:`TapeStageError`
        naming the files that failed, or when ``timeout_seconds`` pass."""
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            files = self.status(request_id)["files"]
            if all(f.get("onDisk") or f.get("state") in _FINAL for f in files):
                break
            if time.monotonic() >= deadline:
                raise TapeStageError(
                    f"stage request {request_id} not done after {self.timeout_seconds:.0f} s"
                )
            time.sleep(self.poll_seconds)
        TokenSession.expect(self.session.send("DELETE", f"{self.url}/stage/{request_id}"), 200, 204)
        failed = [f for f in files if not f.get("onDisk") and f.get("state") != "COMPLETED"]
        if failed:
            raise TapeStageError(
                f"stage request {request_id}: "
                + "; ".join(
                    f"{f['path']} {f.get('state')} {f.get('error', '')}".strip() for f in failed
                )
            )

    def recall(self, paths: Sequence[str]) -> None:
        """Stage ``paths`` and return once all are on disk."""
        self.wait(self.stage(paths))
