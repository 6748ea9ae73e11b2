"""`cygno inspect`: summary, banks, ODB keys and defects of real files, through the Typer app."""

from __future__ import annotations

from typer.testing import CliRunner

from cygno.cli import _register, app
from tests.storage.test_midas import write_run

_register()  # every command group, as `cygno` itself does
WIDE = {"COLUMNS": "200"}


def test_inspect_clean_file(tmp_path):
    path = tmp_path / "run00012.mid.gz"
    write_run(path, "gzip", n_pictures=3)
    result = CliRunner().invoke(app, ["inspect", str(path), "--events", "3"], env=WIDE)
    assert result.exit_code == 0, result.output
    for text in ["gzip", "events / pictures", "7 / 3", "CAM0", "UINT16", "TCAM", "DOUBLE"]:
        assert text in result.output
    assert "/Configurations/Exposure" in result.output and "0.3" in result.output
    assert "0x8000" in result.output and "ODB dump" in result.output
    assert "no defects" in result.output


def test_inspect_reports_defects_and_fails(tmp_path):
    good = tmp_path / "run00012.mid"
    write_run(good, None, n_pictures=2)
    bad = tmp_path / "run00014.mid"
    bad.write_bytes(good.read_bytes()[:-100])
    result = CliRunner().invoke(app, ["inspect", str(bad)], env=WIDE)
    assert result.exit_code == 1
    assert "defects" in result.output
    assert "disagrees with the file name (run 14)" in result.output
    assert "truncated payload" in result.output
    assert "end-of-run event missing" in result.output


def test_inspect_a_file_in_the_configured_s3_store(tmp_path, s3_server, monkeypatch):
    import s3fs

    from cygno.settings import get_settings

    path = tmp_path / "run00012.mid.gz"
    write_run(path, "gzip", n_pictures=2)
    bucket = s3_server.new_bucket()
    s3fs.S3FileSystem(**s3_server.storage_options()).put(
        str(path), f"{bucket}/raw/LNGS/{path.name}"
    )
    monkeypatch.setenv("CYGNO_STORE_URL", f"s3://{bucket}")
    monkeypatch.setenv("CYGNO_S3_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("CYGNO_S3_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("CYGNO_S3_SECRET_ACCESS_KEY", s3_server.secret)
    get_settings.cache_clear()
    try:
        uri = f"s3://{bucket}/raw/LNGS/run00012.mid.gz"
        result = CliRunner().invoke(app, ["inspect", uri], env=WIDE)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "5 / 2" in result.output and "no defects" in result.output
