"""`manage.py calendars <subcommand>`: the exclusion calendars from a shell.

    list                     the calendars: what they exclude, how many schedules use them
    days NAME [--year YEAR]  the days of a year (default: this one) it excludes, with why

Both take --json (one JSON document on stdout). Exit code 2 on bad input (an unknown calendar).
"""

import json
import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from batchjobs.errors import BatchJobsError
from batchjobs.selectors.calendars import calendar_by_name, calendar_list
from batchjobs.services.calendars import calendar_days

EXIT_BAD_INPUT = 2


class Command(BaseCommand):
    help = "Exclusion calendars: list them, or show the days of a year one excludes."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        listing = sub.add_parser("list", help="The calendars.")
        days = sub.add_parser("days", help="The days of a year a calendar excludes, with why.")
        days.add_argument("name", help="The calendar's name.")
        days.add_argument("--year", type=int, help="The year (default: this one).")
        for subparser in (listing, days):
            subparser.add_argument(
                "--json", dest="as_json", action="store_true", help="Print one JSON document."
            )

    def handle(self, *args, **options) -> None:
        try:
            if options["subcommand"] == "list":
                self._list(as_json=options["as_json"])
            else:
                self._days(name=options["name"], year=options["year"], as_json=options["as_json"])
        except BatchJobsError as exc:
            if options["as_json"]:
                self.stdout.write(json.dumps({"error": str(exc)}, ensure_ascii=False))
                sys.exit(EXIT_BAD_INPUT)
            raise CommandError(str(exc), returncode=EXIT_BAD_INPUT) from exc

    def _list(self, *, as_json: bool) -> None:
        rows = [
            {
                "name": calendar.name,
                "country": calendar.country,
                "subdivision": calendar.subdivision,
                "business_days_only": calendar.business_days_only,
                "excluded_dates": calendar.excluded_dates,
                "schedules": vars(calendar)["schedule_count"],
            }
            for calendar in calendar_list()
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, ensure_ascii=False))
            return
        for row in rows:
            place = "-".join(filter(None, (row["country"], row["subdivision"]))) or "-"
            weekends = " +weekends" if row["business_days_only"] else ""
            self.stdout.write(
                f"{row['name']}: holidays {place}{weekends}, {len(row['excluded_dates'])} custom "
                f"dates/ranges, {row['schedules']} schedules"
            )

    def _days(self, *, name: str, year: int | None, as_json: bool) -> None:
        calendar = calendar_by_name(name=name)
        year = year or timezone.localdate().year
        if not 1 <= year <= 9999:
            raise CommandError("--year: from 1 to 9999", returncode=EXIT_BAD_INPUT)
        days = calendar_days(calendar=calendar, start=date(year, 1, 1), end=date(year, 12, 31))
        if as_json:
            document = {
                "calendar": calendar.name,
                "year": year,
                "days": [{"date": day.isoformat(), "reason": why} for day, why in days],
            }
            self.stdout.write(json.dumps(document, ensure_ascii=False))
            return
        for day, why in days:
            self.stdout.write(f"{day.isoformat()} {day:%a}  {why}")
