"""Install the catalogue generation: a table and the triggers that change it on every write.

coverpick.catalogue.generation explains the design and reads the token. The
SQL lives here, not in that module, so that later code changes cannot alter
what this migration installed. Tracking another table needs a new migration.
"""

from django.db import migrations

TABLES = (
    "catalogue_shop",
    "catalogue_game",
    "catalogue_edition",
    "catalogue_coverimage",
    "catalogue_listing",
    "catalogue_classifierversion",
    "catalogue_verdict",
)
EVENTS = ("insert", "update", "delete")
PREFIX = "coverpick_generation_"

SQLITE_TABLE = "coverpick_catalogue_generation"
# A recreated counter row starts at the current time in microseconds, above
# any value that the deleted row reached by increments, so no value repeats.
SQLITE_SEED = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)"

POSTGRESQL_TABLE = "coverpick_catalogue_writer"
# The most rows older than its own id that one writing transaction deletes.
# Each writer adds one row, so the table stays small.
POSTGRESQL_PRUNE_BATCH = 100


def sqlite_install():
    statements = [
        f"CREATE TABLE {SQLITE_TABLE} (id integer PRIMARY KEY CHECK (id = 1), value integer NOT NULL)",
        f"INSERT INTO {SQLITE_TABLE} (id, value) VALUES (1, {SQLITE_SEED})",
    ]
    for table in TABLES:
        for event in EVENTS:
            statements.append(
                f"CREATE TRIGGER {PREFIX}{table}_{event} AFTER {event.upper()} ON {table} BEGIN "
                f"INSERT INTO {SQLITE_TABLE} (id, value) VALUES (1, {SQLITE_SEED}) "
                f"ON CONFLICT (id) DO UPDATE SET value = value + 1; END"
            )
    return statements


def sqlite_remove():
    statements = [f"DROP TRIGGER IF EXISTS {PREFIX}{table}_{event}" for table in TABLES for event in EVENTS]
    return statements + [f"DROP TABLE IF EXISTS {SQLITE_TABLE}"]


def postgresql_install():
    function = f"""
CREATE FUNCTION {PREFIX}note_writer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    own bigint := pg_current_xact_id()::text::bigint;
    counted bigint;
BEGIN
    -- Only this transaction writes its own row, so this never waits.
    INSERT INTO {POSTGRESQL_TABLE} AS writer (txid, statements) VALUES (own, 1)
    ON CONFLICT (txid) DO UPDATE SET statements = writer.statements + 1
    RETURNING writer.statements INTO counted;
    IF counted = 1 THEN
        -- The first write of this transaction. Committed rows below its own
        -- id can go, because this row becomes the largest id when it commits.
        -- SKIP LOCKED: pruning never waits for another transaction.
        DELETE FROM {POSTGRESQL_TABLE} WHERE txid IN (
            SELECT txid FROM {POSTGRESQL_TABLE}
            WHERE txid < own
            ORDER BY txid
            LIMIT {POSTGRESQL_PRUNE_BATCH}
            FOR UPDATE SKIP LOCKED
        );
    END IF;
    RETURN NULL;
END
$$"""
    statements = [f"CREATE TABLE {POSTGRESQL_TABLE} (txid bigint PRIMARY KEY, statements bigint NOT NULL)", function]
    for table in TABLES:
        statements.append(
            f"CREATE TRIGGER {PREFIX}{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {PREFIX}note_writer()"
        )
    return statements


def postgresql_remove():
    statements = [f"DROP TRIGGER IF EXISTS {PREFIX}{table} ON {table}" for table in TABLES]
    return statements + [f"DROP FUNCTION IF EXISTS {PREFIX}note_writer()", f"DROP TABLE IF EXISTS {POSTGRESQL_TABLE}"]


INSTALL = {"sqlite": sqlite_install, "postgresql": postgresql_install}
REMOVE = {"sqlite": sqlite_remove, "postgresql": postgresql_remove}


def _run(builders):
    def run(apps, schema_editor):
        # Other databases get no triggers; the page cache then stays off.
        builder = builders.get(schema_editor.connection.vendor)
        for statement in builder() if builder else []:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("catalogue", "0003_listing_image_validators"),
    ]

    operations = [
        migrations.RunPython(_run(INSTALL), _run(REMOVE), elidable=False),
    ]
