"""Settings from environment, TOML file and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tinyfleet.server.settings import Settings, SettingsError


def test_defaults_use_sqlite_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    s = Settings(data_dir=tmp_path)
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'fleet.db'}"
    assert s.broker_mode == "embedded"


def test_database_url_env_and_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "server.toml"
    cfg.write_text('api_port = 9123\nbroker_mode = "external"\nbroker_port = 1884\n')
    monkeypatch.setenv("TINYFLEET_CONFIG", str(cfg))
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/fleet")
    monkeypatch.setenv("TINYFLEET_API_PORT", "9200")  # environment beats the file
    s = Settings()
    assert s.resolved_database_url == "postgresql://u@db/fleet"
    assert s.api_port == 9200
    assert (s.broker_mode, s.broker_port) == ("external", 1884)


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYFLEET_CONFIG", "/nonexistent/server.toml")
    with pytest.raises(SettingsError, match="/nonexistent/server.toml: no such file"):
        Settings()


def test_production_refuses_development_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="production needs DATABASE_URL"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match="external broker needs TINYFLEET_BROKER_PORT"):
        Settings(broker_mode="external")


def test_production_refuses_an_embedded_broker_without_tls(tmp_path: Path) -> None:
    """Device passwords would cross the network in clear text."""
    db = "postgresql://fleet@127.0.0.1:5432/fleet"
    with pytest.raises(ValidationError, match="production with an embedded broker needs TLS .*clear text"):
        Settings(environment="production", database_url=db)
    with pytest.raises(ValidationError, match="embedded broker with TLS needs broker_tls_cert_file"):
        Settings(environment="production", database_url=db, broker_tls=True)
    cert, key = tmp_path / "broker.pem", tmp_path / "broker.key"
    ok = Settings(environment="production", database_url=db, broker_tls=True, broker_tls_cert_file=cert,
                  broker_tls_key_file=key)  # fmt: skip
    assert ok.broker_tls
    # an external broker's transport is its operator's: the server still needs its password
    assert Settings(environment="production", database_url=db, broker_mode="external", broker_port=8883,
                    broker_password="pw").broker_mode == "external"  # fmt: skip


def test_production_refuses_a_clustered_broker_without_tls_or_a_store_password() -> None:
    db = "postgresql://fleet@127.0.0.1:5432/fleet"
    base = {"environment": "production", "database_url": db, "broker_mode": "cluster", "broker_port": 8883}
    with pytest.raises(ValidationError, match="production with a clustered broker needs TLS .*clear text"):
        Settings(**base, cluster_store_url="redis://:pw@redis:6379/0")
    for url in ("redis://redis:6379/0", "redis://fleet@redis:6379/0"):
        with pytest.raises(ValidationError, match="needs a password in TINYFLEET_CLUSTER_STORE_URL"):
            Settings(**base, broker_tls=True, cluster_store_url=url)
    ok = Settings(**base, broker_tls=True, cluster_store_url="redis://:s3cret@redis:6379/0")
    assert ok.broker_tls and ok.broker_mode == "cluster"
    assert Settings(database_url=db, broker_mode="cluster", broker_port=1883,  # development: neither needed
                    cluster_store_url="redis://127.0.0.1:6379/0").broker_mode == "cluster"  # fmt: skip


def test_the_broker_session_expiry_cap_is_whole_hours(tmp_path: Path) -> None:
    """Mosquitto's persistent_client_expiration has no unit below the hour; the server's own session asks 7 days."""
    assert Settings(data_dir=tmp_path).broker_max_session_expiry_s == 7 * 24 * 3600
    assert Settings(data_dir=tmp_path, broker_max_session_expiry_s=7200).broker_max_session_expiry_s == 7200
    for bad in (0, 1800, 5400):
        with pytest.raises(ValidationError, match="broker_max_session_expiry_s"):
            Settings(data_dir=tmp_path, broker_max_session_expiry_s=bad)
