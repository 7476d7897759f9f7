"""Migrating an empty database gives exactly the models' schema; migrating twice is a no-op; the
migrations roll back to nothing. Runs on the same server as the test database, in two scratch
databases, so later migrations are covered without naming them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg2
import pytest

from models.infra import db as dbmod
from models.infra.settings import get_settings
from models.schema import router
from models.tables import ALL_MODELS

SCHEMA_QUERIES = {
    "columns": """SELECT table_name, column_name, data_type, is_nullable, character_maximum_length
                  FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'migratehistory'
                  ORDER BY 1, 2""",
    "indexes": """SELECT tablename, indexname, regexp_replace(indexdef, ' ON public\\.', ' ON ')
                  FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'migratehistory' ORDER BY 1, 2""",
    "constraints": """SELECT c.conrelid::regclass::text, c.contype, pg_get_constraintdef(c.oid)
                      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                      WHERE n.nspname = 'public' AND c.conrelid::regclass::text <> 'migratehistory'
                      ORDER BY 1, 2, 3""",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
}


def _url_for(database: str) -> str:
    parsed = urlparse(get_settings().database_url)
    return urlunparse(parsed._replace(path="/" + database))


def _admin(sql: str) -> None:
    conn = psycopg2.connect(_url_for("postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def _schema(url: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            out = {}
            for name, query in SCHEMA_QUERIES.items():
                cursor.execute(query)
                out[name] = cursor.fetchall()
            return out
    finally:
        conn.close()


@pytest.fixture
def scratch() -> Iterator[tuple[str, str]]:
    """Two empty databases; the db proxy is rebound to the test database afterwards."""
    base = urlparse(get_settings().database_url).path.lstrip("/") or "shop"
    names = (f"{base}_mig_a", f"{base}_mig_b")
    for name in names:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _admin(f'CREATE DATABASE "{name}"')
    original = dbmod.db.obj
    try:
        yield _url_for(names[0]), _url_for(names[1])
    finally:
        current = dbmod.db.obj
        if current is not original:
            current.close_all()
        dbmod.db.initialize(original)
        for name in names:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrated_schema_equals_the_models_schema(scratch: tuple[str, str]) -> None:
    migrated_url, created_url = scratch
    database = dbmod.init_db(migrated_url)
    applied = router(database).run()
    assert applied, "no migrations ran"
    database.close_all()

    database = dbmod.init_db(created_url)
    with database.connection_context():
        database.create_tables(ALL_MODELS)
    database.close_all()

    migrated, created = _schema(migrated_url), _schema(created_url)
    for part in SCHEMA_QUERIES:
        assert migrated[part] == created[part], f"{part} differ between migrations and models"


def test_migrate_twice_is_a_no_op_and_rollback_removes_everything(scratch: tuple[str, str]) -> None:
    url, _ = scratch
    database = dbmod.init_db(url)
    r = router(database)
    assert r.run()
    assert r.run() == []
    for _ in list(r.done):
        r.rollback()
    database.close_all()
    tables = [t for (t, *_rest) in _schema(url)["columns"]]
    assert tables == []
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute("""SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                              WHERE n.nspname = 'public'""")
            assert cursor.fetchall() == []  # the trigger functions went with their migrations
    finally:
        conn.close()
