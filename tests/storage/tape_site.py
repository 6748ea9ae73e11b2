"""A tape site for the tests, as CNAF runs one: a real WebDAV server (wsgidav on cheroot)
and a WLCG Tape REST API server (Starlette on uvicorn), both on 127.0.0.1, over the
same directory, both checking a bearer token.

The server side is what the tests control: which tokens are accepted, whether the
WebDAV server answers ``Want-Digest: adler32`` (StoRM does; a plain server does not),
which files are on tape only, which recalls fail and how many polls a recall takes.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from wsgidav.wsgidav_app import WsgiDAVApp


@dataclass
class TapeSite:
    root: Path
    tokens: set[str] = field(default_factory=lambda: {"good-token"})
    give_digest: bool = True
    migrated: set[str] = field(default_factory=set)  # namespace paths on tape only
    failing: set[str] = field(default_factory=set)  # recalls of these fail
    polls_to_stage: int = 2
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    stage_requests: dict[str, dict] = field(default_factory=dict)
    dav_url: str = ""
    rest_url: str = ""

    def authorized(self, header: str | None) -> bool:
        return header is not None and header.removeprefix("Bearer ") in self.tokens

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def methods(self, method: str) -> list[str]:
        return [path for m, path in self.requests if m == method]


def _adler32(path: Path) -> str:
    value = 1
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            value = zlib.adler32(block, value)
    return f"{value:08x}"


def dav_app(site: TapeSite):
    """wsgidav behind a token check; a GET of a file on tape only is refused (503), and
    ``Digest: adler32=…`` is added where the site gives digests."""
    dav = WsgiDAVApp(
        {
            "provider_mapping": {"/": str(site.root)},
            "simple_dc": {"user_mapping": {"*": True}},
            "http_authenticator": {"accept_basic": False, "accept_digest": False},
            "dir_browser": {"enable": False},
            "logging": {"enable": False},
            "verbose": 0,
        }
    )

    def app(environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        site.requests.append((method, path))
        if not site.authorized(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer")])
            return [b"token missing, wrong or expired"]
        if method == "GET" and path in site.migrated:
            start_response("503 Service Unavailable", [])
            return [b"file is on tape only: stage it first"]
        want = "adler32" in environ.get("HTTP_WANT_DIGEST", "").lower()

        def answer(status, headers, exc_info=None):
            target = site.file(path)
            if want and site.give_digest and status.startswith("200") and target.is_file():
                headers = [*headers, ("Digest", f"adler32={_adler32(target)}")]
            return start_response(status, headers, exc_info)

        return dav(environ, answer)

    return app


def rest_app(site: TapeSite) -> Starlette:
    """The WLCG Tape REST API v1: stage requests (completing after ``polls_to_stage``
    polls), their deletion, and archiveinfo."""

    def entry(path: str) -> dict:
        if not site.file(path).is_file():
            return {"path": path, "error": "USER ERROR: file does not exist"}
        return {"path": path, "locality": "TAPE" if path in site.migrated else "DISK_AND_TAPE"}

    async def guarded(request: Request):
        if not site.authorized(request.headers.get("authorization")):
            return JSONResponse({"title": "unauthorized", "status": 401}, 401)
        return None

    async def archiveinfo(request: Request):
        site.requests.append(("ARCHIVEINFO", request.url.path))
        if denied := await guarded(request):
            return denied
        return JSONResponse([entry(p) for p in (await request.json())["paths"]])

    async def stage(request: Request):
        site.requests.append(("STAGE", request.url.path))
        if denied := await guarded(request):
            return denied
        request_id = str(uuid.uuid4())
        files = [
            {"path": f["path"], "state": "SUBMITTED", "onDisk": f["path"] not in site.migrated}
            for f in (await request.json())["files"]
        ]
        site.stage_requests[request_id] = {
            "id": request_id,
            "createdAt": time.time(),
            "polls": 0,
            "files": files,
        }
        return JSONResponse({"requestId": request_id}, 201)

    async def stage_status(request: Request):
        if denied := await guarded(request):
            return denied
        found = site.stage_requests.get(request.path_params["id"])
        if found is None:
            return JSONResponse({"title": "no such request", "status": 404}, 404)
        found["polls"] += 1
        for f in found["files"]:
            if f["state"] in ("COMPLETED", "FAILED") or f["onDisk"]:
                continue
            if not site.file(f["path"]).is_file():
                f.update(state="FAILED", error="file does not exist")
            elif found["polls"] < site.polls_to_stage:
                f["state"] = "STARTED"
            elif f["path"] in site.failing:
                f.update(state="FAILED", error="tape read error")
            else:
                site.migrated.discard(f["path"])
                f.update(state="COMPLETED", onDisk=True)
        return JSONResponse({k: v for k, v in found.items() if k != "polls"})

    async def stage_delete(request: Request):
        if denied := await guarded(request):
            return denied
        if site.stage_requests.pop(request.path_params["id"], None) is None:
            return JSONResponse({"title": "no such request", "status": 404}, 404)
        return Response(status_code=200)

    return Starlette(
        routes=[
            Route("/api/v1/archiveinfo", archiveinfo, methods=["POST"]),
            Route("/api/v1/stage", stage, methods=["POST"]),
            Route("/api/v1/stage/{id}", stage_status, methods=["GET"]),
            Route("/api/v1/stage/{id}", stage_delete, methods=["DELETE"]),
        ]
    )


def tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)
    PEM files, so the client checks the chain as it checks IGTF's at CNAF."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def certificate(subject, issuer, public_key, signer, ca: bool, san=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("cygno test CA", "cygno test CA", ca_key.public_key(), ca_key, True)
    san = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = certificate("127.0.0.1", "cygno test CA", key.public_key(), ca_key, False, san)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def _socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class RunningSite:
    """Both servers of a :class:`TapeSite`, started in threads; ``stop()`` ends them."""

    def __init__(self, site: TapeSite, tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: (certificate, key) PEM files; the WebDAV server then speaks HTTPS
        and ``site.dav_url`` is ``davs://``."""
        self.site = site
        self.dav = wsgi.Server(("127.0.0.1", 0), dav_app(site), numthreads=4)
        if tls is not None:
            self.dav.ssl_adapter = BuiltinSSLAdapter(str(tls[0]), str(tls[1]))
        self.dav.prepare()
        scheme = "davs" if tls else "dav"
        site.dav_url = f"{scheme}://127.0.0.1:{self.dav.bind_addr[1]}"
        self._dav_thread = threading.Thread(target=self.dav.serve, daemon=True)
        self._dav_thread.start()

        sock = _socket()
        site.rest_url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"
        config = uvicorn.Config(rest_app(site), log_level="warning", lifespan="off")
        self.rest = uvicorn.Server(config)
        self._rest_thread = threading.Thread(
            target=self.rest.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._rest_thread.start()
        deadline = time.monotonic() + 10
        while not self.rest.started and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.rest.should_exit = True
        self.dav.stop()
        self._rest_thread.join(5)
        self._dav_thread.join(5)
