"""One settings object saying where data lives (environment prefix ``CYGNO_``).

Every value has an embedded default, so a fresh checkout runs with no configuration:
a ``file://`` object store, SQLite catalog and logbook, and a local tape directory,
all under ``./data``. Secrets are ``SecretStr`` so they never appear in logs or reprs.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _data_dir() -> Path:
    return Path(os.environ.get("CYGNO_DATA_DIR", "data")).resolve()


class Settings(BaseSettings):
    """Where the platform's data and services live."""

    model_config = SettingsConfigDict(env_prefix="CYGNO_", extra="ignore")

    data_dir: Path = Field(default_factory=_data_dir)
    store_url: str = Field(
        default_factory=lambda: (_data_dir() / "cygno-data").as_uri(),
        description="Object store root: file:///… or s3://bucket",
    )
    s3_endpoint_url: str | None = None
    s3_region: str = Field(
        default="us-east-1",
        description="Region the S3 endpoint signs with (SigV4 scope of presigned URLs)",
    )
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    catalog_url: str = Field(
        default_factory=lambda: f"sqlite:///{_data_dir() / 'catalog.db'}",
    )
    daqdb_url: str = Field(
        default_factory=lambda: f"sqlite:///{_data_dir() / 'daq.db'}",
    )
    tape_url: str = Field(default_factory=lambda: (_data_dir() / "tape").as_uri())
    tape_recall_seconds: float = Field(
        default=1.0, description="Simulated recall latency of the local HSM"
    )
    tape_hsm_state_url: str | None = Field(
        default=None, description="Local HSM records, outside the tape namespace (<tape>.hsm)"
    )
    tape_token_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("CYGNO_TAPE_TOKEN_FILE", "BEARER_TOKEN_FILE"),
        description="Bearer token file of a davs:// tape (re-read on renewal)",
    )
    tape_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CYGNO_TAPE_TOKEN", "BEARER_TOKEN")
    )
    tape_rest_url: str | None = Field(
        default=None, description="WLCG Tape REST API, e.g. https://host:8443/api/v1"
    )
    tape_ca_path: str | None = Field(
        default=None, description="CA bundle file or directory (IGTF) for the tape's TLS"
    )
    tape_stage_poll_seconds: float = 30.0
    tape_stage_timeout_seconds: float = 6 * 3600.0
    executor: Literal["local", "htcondor"] = "local"
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1)
    chunk_events: int = 50
    htcondor_schedd: str | None = Field(
        default=None, description="Schedd name; None: the local one (CONDOR_CONFIG)"
    )
    htcondor_collector: str | None = None
    htcondor_python: str | None = Field(
        default=None, description="Interpreter on the execute nodes (default: this venv's)"
    )
    htcondor_container_image: str | None = None
    htcondor_request_memory_mb: int = 2048
    htcondor_token_file: Path | None = Field(
        default=None, description="IDTOKEN file for the schedd and collector (IDTOKENS auth)"
    )
    htcondor_spool: bool | None = Field(
        default=None,
        description="Spool sandboxes to the schedd and follow jobs by queries "
        "(default: when a schedd or collector is named)",
    )
    reco_config: str = "lngs"
    prefect_api_timeout_seconds: float = Field(
        default=20.0,
        description="Longest wait for one Prefect API request (a silent API fails after "
        "about this times the attempts, naming its URL)",
    )
    prefect_api_retries: int = Field(
        default=2, description="Retries of a Prefect API request that got no answer"
    )
    bridge_host: str = "127.0.0.1"
    bridge_port: int = 4300
    stack_prefect_port: int = Field(
        default=4200, description="Port of the local stack's Prefect server (cygno stack up)"
    )
    stack_s3_port: int = Field(default=4566, description="Port of the local stack's S3 (--s3)")
    stack_crash_silence_seconds: int | None = Field(
        default=None,
        gt=30,
        description="Local stack: seconds without a heartbeat (one every 30 s) before the "
        "shipped automation crashes a flow run (default: deployments/automations.yaml's)",
    )
    stack_db_mirror_interval_seconds: int | None = Field(
        default=None,
        gt=0,
        description="Local stack: seconds between scheduled db-mirror runs "
        "(default: prefect.yaml's)",
    )
    bridge_token: SecretStr | None = None
    public_url: str | None = Field(
        default=None,
        description="Address browsers use to reach the platform's HTTP app (plots)",
    )

    def storage_options(self) -> dict:
        """fsspec options for the object store (credentials only when configured)."""
        if not self.store_url.startswith("s3://"):
            return {}
        options: dict = {}
        if self.s3_endpoint_url:
            options["endpoint_url"] = self.s3_endpoint_url
        options["client_kwargs"] = {"region_name": self.s3_region}
        if self.s3_access_key_id and self.s3_secret_access_key:
            options["key"] = self.s3_access_key_id.get_secret_value()
            options["secret"] = self.s3_secret_access_key.get_secret_value()
        return options


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
