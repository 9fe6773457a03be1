"""The API's settings: pydantic-settings reads MA_API_* (and where the data is) when they are
built, with embedded defaults; arguments override the environment."""

from pathlib import Path

import pytest

from serving.config import ApiSettings

VARIABLES = {
    "MA_DATA_DIR": "/srv/ma",
    "MA_WAREHOUSE_URL": "postgresql://ma:pw@db:5432/ma",
    "MA_API_DB_URL": "",  # empty: unset
    "MA_API_CORS_ORIGINS": "https://crm.example.fr, https://bi.example.fr,",
    "MA_API_REFRESH_SECONDS": "2.5",
    "MA_API_RATE_PER_SECOND": "50",
    "MA_API_RATE_BURST": "80",
    "MA_API_KEY_CACHE_SECONDS": "3",
}


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_unset_variables_take_the_defaults(clean: pytest.MonkeyPatch) -> None:
    settings = ApiSettings()

    assert (settings.data_dir, settings.warehouse_url, settings.api_db_url) == (
        Path("data"),
        "",
        "",
    )
    assert settings.cors_origins == ()
    assert (settings.refresh_seconds, settings.rate_per_second, settings.rate_burst) == (5, 20, 40)
    assert settings.key_cache_seconds == 10
    assert not settings.on_postgres
    assert settings.api_database == f"sqlite:///{Path('data').resolve() / 'api.sqlite'}"


def test_the_variables_are_read_when_the_settings_are_built(clean: pytest.MonkeyPatch) -> None:
    for name, value in VARIABLES.items():
        clean.setenv(name, value)
    settings = ApiSettings()

    assert settings.data_dir == Path("/srv/ma") and settings.on_postgres
    assert settings.api_database == "postgresql+psycopg://ma:pw@db:5432/ma"  # the warehouse's
    assert settings.cors_origins == ("https://crm.example.fr", "https://bi.example.fr")
    assert (settings.refresh_seconds, settings.rate_per_second, settings.rate_burst) == (
        2.5,
        50,
        80,
    )
    assert settings.key_cache_seconds == 3
    assert "pw" not in repr(settings)


def test_arguments_override_the_environment(clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in VARIABLES.items():
        clean.setenv(name, value)

    positional = ApiSettings(tmp_path, "")
    keywords = ApiSettings(data_dir=tmp_path, warehouse_url="", rate_burst=1.0, cors_origins=())

    assert positional.data_dir == keywords.data_dir == tmp_path
    assert not positional.on_postgres and positional.rate_burst == 80
    assert (keywords.rate_burst, keywords.cors_origins, keywords.refresh_seconds) == (1, (), 2.5)
