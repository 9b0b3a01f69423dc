"""``alliance-bot events list [--json]`` and ``alliance-bot reminders list [--json]``.

The JSON shapes are a contract:

- activities: ``[{"id", "type", "title", "alliance", "start", "place", "capacity", "attendees"}]`` — upcoming,
  scheduled activities, soonest first; ``start`` is ISO 8601 with the offset of ``BOT_TIMEZONE``; ``alliance`` is
  the alliance id or null for a joint activity; ``attendees`` is the number of confirmed seats (waiting list
  excluded); ``place`` and ``capacity`` may be null.
- reminders: ``[{"event_id", "kind", "due", "target"}]`` — pending reminders, soonest first; ``kind`` is
  ``group:7d``-style (group reminders) or ``attendee:1d`` (personal ones), ``target`` is ``alliance:ID`` or
  ``user:ID``, ``due`` is ISO 8601 with offset.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the settings (pydantic) load when a command runs, not for --help
    from bot.settings import Settings


async def _activities_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store import Store
    from bot.store.activities import ActivityRepo

    store = await Store.open(settings.effective_database_url)
    try:
        repo = ActivityRepo(store.sessions)
        activities = await repo.upcoming(datetime.now(UTC), limit=100_000)
        counts = await repo.going_counts(e.id for e in activities if e.id is not None)
    finally:
        await store.close()
    rows: list[dict[str, Any]] = [
        {
            "id": activity.id,
            "type": activity.type,
            "title": activity.title,
            "alliance": activity.alliance_id,
            "start": activity.start.astimezone(settings.tz).isoformat(),
            "place": activity.place,
            "capacity": activity.capacity,
            "attendees": counts.get(activity.id or 0, 0),
        }
        for activity in activities
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("近期没有安排活动。")
    for row in rows:
        seats = f"{row['attendees']}/{row['capacity']}" if row["capacity"] else str(row["attendees"])
        print(
            f"{row['id']}\t{row['start']}\t{row['type']}\t{row['alliance'] or '全体'}\t{seats}\t{row['title']}"
        )
    return 0


async def _reminders_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.store import Store
    from bot.store.activities import ActivityRepo

    store = await Store.open(settings.effective_database_url)
    try:
        reminders = await ActivityRepo(store.sessions).pending_reminders()
    finally:
        await store.close()
    rows = [
        {
            "event_id": r.activity_id,
            "kind": r.kind,
            "due": r.due.astimezone(settings.tz).isoformat(),
            "target": r.target,
        }
        for r in reminders
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("没有待发送的提醒。")
    for row in rows:
        print(f"{row['due']}\t{row['activity_id']}\t{row['kind']}\t{row['target']}")
    return 0


def register_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``events`` and ``reminders`` subcommands."""
    activities = sub.add_parser("events", help="the alliance's events").add_subparsers(
        dest="action", required=True
    )
    listing = activities.add_parser("list", help="upcoming events")
    listing.add_argument("--json", action="store_true", help="print a JSON list (a stable contract)")
    listing.set_defaults(run=_activities_list)

    reminders = sub.add_parser("reminders", help="event reminders").add_subparsers(
        dest="action", required=True
    )
    pending = reminders.add_parser("list", help="reminders still to send")
    pending.add_argument("--json", action="store_true", help="print a JSON list (a stable contract)")
    pending.set_defaults(run=_reminders_list)
