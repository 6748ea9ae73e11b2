"""Screenshots of the Prefect UI with headless Chromium, for the docs.

The UI is a single-page app, so Chromium is given a virtual-time budget to run its
scripts and fetch the API before the picture is taken. Chromium comes from the
distribution (``apt-get install chromium``); nothing is downloaded at run time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from cygno.resources import prefect_api_failure
from cygno.settings import get_settings

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium() -> str:
    """Path of the Chromium binary, or a clear error naming the package to install."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise FileNotFoundError("Chromium not found: install it with `apt-get install chromium`")


def screenshot(url: str, out: Path, width: int = 1600, height: int = 1000) -> Path:
    """Render ``url`` and save it as a PNG at ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium(),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "--virtual-time-budget=20000",
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return out


def quality_artifact_url(ui_url: str, api_url: str) -> str:
    """UI address of the newest quality markdown artifact."""
    timeout = get_settings().prefect_api_timeout_seconds
    try:
        response = httpx.post(
            f"{api_url}/artifacts/filter",
            json={
                "artifacts": {"type": {"any_": ["markdown"]}},
                "sort": "CREATED_DESC",
                "limit": 20,
            },
            timeout=timeout,
        )
    except httpx.TransportError as error:
        raise prefect_api_failure(api_url, error, timeout) from None
    response.raise_for_status()
    for artifact in response.json():
        if "quality" in (artifact.get("key") or ""):
            return f"{ui_url}/artifacts/artifact/{artifact['id']}"
    raise LookupError("no quality artifact on the server yet: process a run first")


def ui_screenshots(ui_url: str, api_url: str, out_dir: Path) -> list[Path]:
    """The flow-runs page and the newest quality artifact of a running stack."""
    return [
        screenshot(f"{ui_url}/runs", out_dir / "prefect-flow-runs.png"),
        screenshot(
            quality_artifact_url(ui_url, api_url),
            out_dir / "prefect-quality-artifact.png",
            height=2600,
        ),
    ]
