"""aihub.database: the hub's database URL, with any password safely quoted."""

import pytest
from sqlalchemy.engine import make_url

from aihub.database import database_url
from aihub.settings import load

SETTINGS_ENV = {"POSTGRES_HOST": "db.example", "POSTGRES_PORT": "6543", "POSTGRES_USER": "hub_user", "POSTGRES_DB": "hub.db"}


@pytest.mark.parametrize("password", [
    "plain-password",
    "p@ss:w/rd%#1",
    "a?b&c=d+e f",
    "100%25 encoded?",
    "ünïcødé-pässwörd",
])
def test_the_url_round_trips_through_sqlalchemy(password):
    url = make_url(database_url(load(SETTINGS_ENV), password))
    assert url.password == password
    assert (url.drivername, url.username, url.host, url.port, url.database) == (
        "postgresql+psycopg2", "hub_user", "db.example", 6543, "hub.db",
    )


def test_defaults_point_at_the_compose_postgres_service():
    url = make_url(database_url(load({}), "secret-password"))
    assert (url.host, url.port, url.username, url.database) == ("postgres", 5432, "jupyterhub", "jupyterhub")


def test_sqlalchemy_picks_the_installed_psycopg2_driver():
    dialect = make_url(database_url(load({}), "secret-password")).get_dialect()
    assert dialect.driver == "psycopg2"
    assert dialect.import_dbapi().__name__ == "psycopg2"
