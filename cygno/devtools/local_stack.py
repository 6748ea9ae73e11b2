"""The local stack behind ``make demo``: Prefect server, worker, event bridge, optional S3.

Every service is a child process in its own session, recorded in
``<data_dir>/stack/state.json`` with its log file, so ``cygno stack down`` (or Ctrl+C in
the demo) stops exactly what was started and leaves no process behind. Nothing here is
needed in production, where the server, workers and bridge run as managed services.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from cygno.resources import prefect_environment
from cygno.settings import Settings, get_settings

WORK_POOL = "cygno-process"
REPO_ROOT = Path(__file__).resolve().parents[2]
AUTOMATIONS = REPO_ROOT / "deployments" / "automations.yaml"
#: Seconds between a flow run's heartbeats (Prefect's minimum): the zombie automation of
#: deployments/automations.yaml marks a run Crashed when they stop.
HEARTBEAT_SECONDS = 30


class StackError(RuntimeError):
    """A service of the local stack could not be started."""


@dataclass
class ServiceRecord:
    name: str
    pid: int
    argv: list[str]
    log: str


@dataclass(frozen=True)
class StackAddresses:
    api_url: str
    ui_url: str
    bridge_url: str
    s3_endpoint_url: str | None


class LocalStack:
    """Starts, inspects and stops the platform's services on 127.0.0.1."""

    def __init__(
        self, settings: Settings, with_s3: bool = False, prefect_database_url: str | None = None
    ) -> None:
        self.settings = settings
        self.with_s3 = with_s3
        #: The Prefect server's own database (``postgresql+asyncpg://…``); SQLite in
        #: PREFECT_HOME when None, which serialises every write ("database is locked"
        #: under a burst of notifications).
        self.prefect_database_url = prefect_database_url
        self.root = settings.data_dir / "stack"
        self.state_file = self.root / "state.json"
        prefect_url = f"http://127.0.0.1:{settings.stack_prefect_port}"
        self.addresses = StackAddresses(
            api_url=f"{prefect_url}/api",
            ui_url=prefect_url,
            bridge_url=f"http://{settings.bridge_host}:{settings.bridge_port}",
            s3_endpoint_url=f"http://127.0.0.1:{settings.stack_s3_port}" if with_s3 else None,
        )

    # -- environment shared by every child ------------------------------------------
    def bridge_token(self) -> str:
        """The bridge's bearer token: from the environment, else one made for this stack."""
        if self.settings.bridge_token:
            return self.settings.bridge_token.get_secret_value()
        token_file = self.root / "bridge.token"
        if not token_file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            token_file.write_text(secrets.token_urlsafe(32))
            token_file.chmod(0o600)
        return token_file.read_text().strip()

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PREFECT_API_URL=self.addresses.api_url,
            PREFECT_HOME=str(self.settings.data_dir / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_LOGGING_LEVEL=env.get("PREFECT_LOGGING_LEVEL", "INFO"),
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(HEARTBEAT_SECONDS),
            # The directory the deployments' pull step enters (prefect.yaml).
            CYGNO_CODE_DIR=env.get("CYGNO_CODE_DIR", str(REPO_ROOT)),
            CYGNO_DATA_DIR=str(self.settings.data_dir),
            CYGNO_BRIDGE_TOKEN=self.bridge_token(),
            CYGNO_PUBLIC_URL=self.settings.public_url or self.addresses.bridge_url,
        )
        for name, value in prefect_environment(self.settings).items():
            env.setdefault(name, value)  # workers and flow processes: bounded API calls
        if self.prefect_database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.prefect_database_url
        if self.with_s3:
            env.update(
                CYGNO_STORE_URL="s3://cygno-data",
                CYGNO_S3_ENDPOINT_URL=self.addresses.s3_endpoint_url or "",
                AWS_ACCESS_KEY_ID=env.get("AWS_ACCESS_KEY_ID", "demo"),
                AWS_SECRET_ACCESS_KEY=env.get("AWS_SECRET_ACCESS_KEY", "demo"),
                AWS_DEFAULT_REGION=env.get("AWS_DEFAULT_REGION", "us-east-1"),
            )
        return env

    def adopt_environment(self) -> Settings:
        """Point this process at the stack: the same CYGNO_* and Prefect API as its
        children. Call it before anything imports Prefect, which reads PREFECT_API_URL
        once; a client without it starts an ephemeral API server on the same database."""
        if "prefect" in sys.modules:
            raise StackError("Prefect was imported before the stack's PREFECT_API_URL was set")
        for name, value in self.environment().items():
            if name.startswith(("CYGNO_", "PREFECT_", "AWS_")):
                os.environ[name] = value
        get_settings.cache_clear()
        return get_settings()

    # -- state ------------------------------------------------------------------------
    def _records(self) -> list[ServiceRecord]:
        if not self.state_file.exists():
            return []
        return [ServiceRecord(**item) for item in json.loads(self.state_file.read_text())]

    def _save(self, records: list[ServiceRecord]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps([asdict(r) for r in records], indent=2))

    def status(self) -> dict[str, bool]:
        """Service name → whether its process is alive."""
        return {record.name: _alive(record.pid) for record in self._records()}

    # -- lifecycle --------------------------------------------------------------------
    def up(self, log: Callable[[str], None] = print) -> StackAddresses:
        """Start every service not already running and wait until each answers."""
        running = {name for name, alive in self.status().items() if alive}
        records = [r for r in self._records() if r.name in running]
        bin_dir = Path(sys.executable).parent
        env = self.environment()

        def start(name: str, argv: list[str], ready: Callable[[], bool]) -> None:
            if name not in running:
                log(f"starting {name}")
                records.append(self._spawn(name, argv, env))
                self._save(records)
            _wait_until(ready, timeout=120, what=f"{name} (log: {self.root / 'logs' / name}.log)")

        if self.with_s3:
            start(
                "s3",
                [
                    str(bin_dir / "moto_server"),
                    "-H",
                    "127.0.0.1",
                    "-p",
                    str(self.settings.stack_s3_port),
                ],
                lambda: _answers(f"{self.addresses.s3_endpoint_url}/"),
            )
            _ensure_bucket(self.addresses.s3_endpoint_url or "", "cygno-data", env)
        if self.prefect_database_url and "prefect-server" not in running:
            ensure_postgres_database(self.prefect_database_url)
        start(
            "prefect-server",
            [
                str(bin_dir / "prefect"),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.settings.stack_prefect_port),
            ],
            lambda: _answers(f"{self.addresses.api_url}/health"),
        )
        self._deploy(env, log)
        if "worker" not in running:
            # No worker was alive, so no flow run can be: what says otherwise died with
            # the previous stack. End those runs Crashed and free their slots.
            self._prefect_python(env, log, "cygno.devtools.recover", "--pool", WORK_POOL)
        start(
            "worker",
            [
                str(bin_dir / "prefect"),
                "worker",
                "start",
                "--pool",
                WORK_POOL,
                "--name",
                "cygno-local-worker",
            ],
            lambda: True,
        )
        start(
            "bridge",
            [str(bin_dir / "cygno"), "bridge"],
            lambda: _answers(f"{self.addresses.bridge_url}/healthz"),
        )
        # Files that arrived while the stack was down, or whose run crashed: now, not in
        # five minutes.
        self._prefect(env, log, "deployment", "run", "sentinel/sentinel")
        return self.addresses

    def _deploy(self, env: dict[str, str], log: Callable[[str], None]) -> None:
        """Create the work pool, apply prefect.yaml and the automations (idempotent)."""
        log("applying prefect.yaml")
        # The pull step's {{ $CYGNO_CODE_DIR }} must reach the worker unresolved: each
        # worker enters its own checkout.
        env = {name: value for name, value in env.items() if name != "CYGNO_CODE_DIR"}
        self._prefect(
            env, log, "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"
        )
        self._prefect(
            env, log, "deploy", "--all", "--prefect-file", str(REPO_ROOT / "prefect.yaml")
        )
        silence = self.settings.stack_crash_silence_seconds
        self._prefect_python(
            env,
            log,
            "cygno.deployments.automations",
            str(AUTOMATIONS),
            *(["--silence", str(silence)] if silence else []),
        )
        if interval := self.settings.stack_db_mirror_interval_seconds:
            self._prefect_python(
                env, log, "cygno.devtools.reschedule", "db-mirror/db-mirror", str(interval)
            )

    def _prefect(self, env: dict[str, str], log: Callable[[str], None], *args: str) -> None:
        self._run([str(Path(sys.executable).parent / "prefect"), "--no-prompt", *args], env, log)

    def _prefect_python(
        self, env: dict[str, str], log: Callable[[str], None], module: str, *args: str
    ) -> None:
        """A Prefect client in a child process, where PREFECT_API_URL is this stack's."""
        self._run([sys.executable, "-m", module, *args], env, log)

    @staticmethod
    def _run(argv: list[str], env: dict[str, str], log: Callable[[str], None]) -> None:
        result = subprocess.run(
            argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise StackError(f"{' '.join(argv[1:4])} failed:\n{result.stdout}{result.stderr}")
        for line in result.stdout.splitlines():
            if line.startswith("cygno:"):
                log(line.removeprefix("cygno:").strip())

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> ServiceRecord:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=REPO_ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return ServiceRecord(name=name, pid=process.pid, argv=argv, log=str(log_path))

    def down(self, log: Callable[[str], None] = print) -> None:
        """Stop every service this stack started: SIGTERM its process group, then SIGKILL;
        then its descendants in sessions of their own (the worker's flow-run processes).
        Returns once all of them are gone."""
        for record in reversed(self._records()):
            if _alive(record.pid):
                log(f"stopping {record.name}")
                descendants = _descendants(record.pid)
                _terminate_group(record.pid)
                _terminate(descendants)
        if self.state_file.exists():
            self.state_file.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def _terminate_group(pid: int, grace: float = 15.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _group_alive(pid):
                return
            time.sleep(0.2)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _terminate(processes: list[psutil.Process], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds, and wait until every one is gone."""
    alive = [p for p in processes if p.is_running()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(sig)
        _gone, alive = psutil.wait_procs(alive, timeout=grace)
        if not alive:
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return _alive(pgid) or any(
        _alive(int(p.name))
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and _pgid(int(p.name)) == pgid
    )


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code < 500
    except httpx.HTTPError:
        return False


def _wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise StackError(f"{what} did not come up within {timeout:.0f} s")


def _ensure_bucket(endpoint_url: str, bucket: str, env: dict[str, str]) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(
        endpoint_url=endpoint_url,
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
    )
    if not fs.exists(bucket):
        fs.mkdir(bucket)


#: ``cygno stack up --postgres``: the PostgreSQL on this machine, a database of its own.
LOCAL_PREFECT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/cygno_prefect"


def ensure_postgres_database(url: str) -> None:
    """Create the database ``url`` names if it does not exist (through the server's
    ``postgres`` maintenance database; the Prefect server creates its tables)."""
    import psycopg
    import sqlalchemy as sa

    parsed = sa.make_url(url)
    name = parsed.database
    if not name or not name.replace("_", "").isalnum():
        raise StackError(f"not a plain database name: {name!r}")
    admin = parsed.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(f'CREATE DATABASE "{name}"')
