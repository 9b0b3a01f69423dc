"""A cheap version of what the database holds: a digest of every row of the tables a derived view reads,
fetched as plain driver rows (no ORM objects, no type conversion) in primary-key order, one query per table.

The console keys its cache of the year report by it, so a cached report is reused exactly while nothing it is
built from changed — in this process or any other on the same database — and rebuilt after any change."""

from __future__ import annotations

import hashlib

from sqlmodel import SQLModel

from bot.store.engine import Sessions

# operational tables: written all the time (every request, message and delivery) and read by no report.
# ``problem_event`` is read by the report (first responses), but every claim it records also changes its
# ``problem`` row, which is digested; ``problem_feedback`` (the askers' ratings) changes nothing else, so it is
# digested itself.
OPERATIONAL = frozenset(
    {
        "aibot_stream",
        "audit_entry",
        "console_key",
        "console_link_use",
        "console_session",
        "duty_notice",
        "event_reminder",
        "job_run",
        "outbox",
        "outbox_send",
        "problem_event",
        "problem_photo",
        "processed_message",
        "report_file",
        "role_version",
        "studio_ask_day",
        "wecom_token",
        "alembic_version",
    }
)


# columns that change without the data changing: when a person last wrote to the bot
VOLATILE_COLUMNS = frozenset({("member", "last_seen_at")})


async def content_version(sessions: Sessions, *, skip: frozenset[str] = OPERATIONAL) -> str:
    """A digest of every row of every table but ``skip`` (a table added later is included by default), less
    ``VOLATILE_COLUMNS``. The database renders each table's rows as one text (PostgreSQL: a row value's text
    form, hashed with md5; SQLite: each value ``quote()``-d), so no Python object is made per row or value."""
    digest = hashlib.blake2b(digest_size=16)
    async with sessions() as session:
        connection = await session.connection()
        quote = connection.dialect.identifier_preparer.quote
        postgres = connection.dialect.name == "postgresql"
        for table in sorted(SQLModel.metadata.tables.values(), key=lambda t: t.name):
            if table.name in skip:
                continue
            order = ", ".join(quote(c.name) for c in table.primary_key.columns) or "1"
            columns = [quote(c.name) for c in table.columns if (table.name, c.name) not in VOLATILE_COLUMNS]
            if postgres:
                query = (
                    f"SELECT md5(coalesce(string_agg(ROW({', '.join(columns)})::text, E'\\n' ORDER BY {order}),"
                    f" '')) FROM {quote(table.name)}"
                )
            else:
                values = " || ',' || ".join(f"quote({c})" for c in columns)
                query = (
                    f"SELECT group_concat({values}, char(10)) "
                    f"FROM (SELECT * FROM {quote(table.name)} ORDER BY {order})"
                )
            text = (await connection.exec_driver_sql(query)).scalar()
            digest.update(f"{table.name}\n{text or ''}\n".encode())
    return digest.hexdigest()
