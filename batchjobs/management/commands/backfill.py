"""`manage.py backfill`: run a schedule's past fires, and operate backfills.

    backfill SCHEDULE_ID --from ISO --to ISO [--concurrency N] [--param K=V]... [--dry-run] [--yes]
    backfill status [ID]              one backfill's progress, or every backfill's
    backfill pause ID | resume ID | cancel ID

Times are ISO 8601 (2026-11-01, 2026-11-01T09:00, 2026-11-01T09:00+09:00); without a UTC
offset they are read in the schedule's own time zone. --dry-run lists the fire times (the first
1,000) and saves nothing; --yes confirms a range of more than 1,000,000 fires.

Every form takes --json, and exits as `manage.py batchjobs` does: 0 done, 2 bad input (an
unknown schedule or backfill, a bad range), 4 conflict (pause a backfill that is not running).
"""

import json
import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext

from batchjobs.errors import Conflict, InvalidInput, NotFound
from batchjobs.models import Backfill
from batchjobs.selectors.backfills import (
    backfill_get,
    backfill_list,
    backfill_progress_text,
    backfill_total_estimated,
    fires_count_text,
)
from batchjobs.selectors.schedules import schedule_get
from batchjobs.services.backfills import (
    DryRun,
    backfill_cancel,
    backfill_create,
    backfill_pause,
    backfill_resume,
)

from .batchjobs import EXIT_BAD_INPUT, EXIT_CONFLICT, json_default, parse_param

OPERATIONS = {"pause": backfill_pause, "resume": backfill_resume, "cancel": backfill_cancel}
# The service's fields as this command's options are spelled.
OPTION_OF_FIELD = {
    "range_start": "--from",
    "range_end": "--to",
    "max_concurrency": "--concurrency",
    "confirm": "--yes",
    "params": "--param",
}


def parse_time(text: str | None, *, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            {option: gettext("%(text)s is not an ISO 8601 date and time") % {"text": repr(text)}}
        ) from None


def backfill_json(backfill: Backfill) -> dict[str, Any]:
    return {
        "id": backfill.pk,
        "schedule": backfill.schedule_id,
        "job_name": backfill.schedule.job.name,
        "range_start": backfill.range_start,
        "range_end": backfill.range_end,
        "max_concurrency": backfill.max_concurrency,
        "status": backfill.status,
        "fires_total": backfill.fires_total,
        "fires_total_estimated": backfill_total_estimated(backfill),
        "fires_created": backfill.fires_created,
        "fires_existing": backfill.fires_existing,
        "active": getattr(backfill, "active", 0),
        "progress": backfill_progress_text(backfill),
        "cursor": backfill.cursor,
        "finished_at": backfill.finished_at,
    }


class Command(BaseCommand):
    help = "Run a schedule's fires over a past range; status, pause, resume, cancel backfills."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "target", help="A schedule's id (create a backfill), or status|pause|resume|cancel."
        )
        parser.add_argument("id", type=int, nargs="?", help="The backfill's id.")
        parser.add_argument("--from", dest="range_start", help="The first fire time included.")
        parser.add_argument("--to", dest="range_end", help="The last fire time included.")
        parser.add_argument(
            "--concurrency", type=int, default=1, help="Runs queued or running at once (1-1000)."
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A parameter over the schedule's; VALUE is read as JSON if it parses.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List the fire times; save nothing."
        )
        parser.add_argument(
            "--yes", action="store_true", help="Confirm a range of over 1,000,000 fires."
        )
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="Print one JSON document."
        )

    def handle(self, *args, target: str, id: int | None, as_json: bool, **options) -> None:
        try:
            if target.isdigit():
                self._create(schedule=int(target), as_json=as_json, **options)
            elif target == "status":
                self._status(id, as_json=as_json)
            elif target in OPERATIONS and id is not None:
                OPERATIONS[target](backfill_id=id)
                self._show(backfill_get(backfill_id=id), as_json=as_json)
            else:
                raise InvalidInput(
                    {"target": gettext("Give a schedule's id, or status|pause|resume|cancel ID.")}
                )
        except InvalidInput as exc:
            errors = exc.field_errors.items()
            fields = {OPTION_OF_FIELD.get(name, name): msgs for name, msgs in errors}
            message = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
            self._fail(as_json, EXIT_BAD_INPUT, message, fields)
        except NotFound as exc:
            self._fail(as_json, EXIT_BAD_INPUT, str(exc), {})
        except Conflict as exc:
            self._fail(as_json, EXIT_CONFLICT, str(exc), {})

    def _fail(self, as_json: bool, code: int, message: str, fields: dict) -> None:
        if as_json:
            self.stdout.write(json.dumps({"error": message, "fields": fields}))
            sys.exit(code)
        raise CommandError(message, returncode=code)

    def _print(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, default=json_default, ensure_ascii=False))

    def _create(self, *, schedule: int, as_json: bool, **options) -> None:
        params = dict(parse_param(text) for text in options["param"])
        result = backfill_create(
            schedule=schedule,
            range_start=parse_time(options["range_start"], option="--from"),
            range_end=parse_time(options["range_end"], option="--to"),
            max_concurrency=options["concurrency"],
            params=params,
            confirm=options["yes"],
            dry_run=options["dry_run"],
        )
        if isinstance(result, DryRun):
            self._dry_run(result, schedule=schedule, as_json=as_json)
        else:
            self._show(backfill_get(backfill_id=result.pk), as_json=as_json)

    def _dry_run(self, preview: DryRun, *, schedule: int, as_json: bool) -> None:
        if as_json:
            self._print(
                {
                    "total": preview.total,
                    "total_estimated": preview.estimated,
                    "needs_confirm": preview.needs_confirm,
                    "existing": preview.existing,
                    "excluded": preview.excluded,
                    "moved": preview.moved,
                    "fires": [
                        {
                            "at": item.fire,
                            "execution": item.execution_id,
                            "excluded": item.excluded,
                            "reason": item.reason,
                            "moved_to": item.moved_to,
                        }
                        for item in preview.fires
                    ],
                }
            )
            return
        zone = ZoneInfo(schedule_get(schedule_id=schedule).timezone)
        for item in preview.fires:
            mark = (
                gettext("  (already run: execution %(id)s)") % {"id": item.execution_id}
                if item.execution_id
                else ""
            )
            if item.moved_to is not None:
                mark += gettext("  (moved to %(when)s: %(reason)s)") % {
                    "when": item.moved_to.astimezone(zone).isoformat(),
                    "reason": item.reason,
                }
            elif item.excluded:
                mark += gettext("  (excluded, not run: %(reason)s)") % {"reason": item.reason}
            self.stdout.write(f"{item.fire.astimezone(zone).isoformat()}{mark}")
        total = fires_count_text(preview.total, estimated=preview.estimated)
        self.stdout.write(
            gettext("%(total)s fire(s) in the range, %(listed)s listed; nothing saved.")
            % {"total": total, "listed": len(preview.fires)}
        )
        if preview.excluded or preview.moved:
            self.stdout.write(
                gettext("Of those listed, %(excluded)s excluded and %(moved)s moved by calendars.")
                % {"excluded": preview.excluded, "moved": preview.moved}
            )

    def _status(self, backfill_id: int | None, *, as_json: bool) -> None:
        if backfill_id is not None:
            self._show(backfill_get(backfill_id=backfill_id), as_json=as_json)
            return
        backfills = list(backfill_list()[:100])
        if as_json:
            self._print([backfill_json(backfill) for backfill in backfills])
            return
        for backfill in backfills:
            self.stdout.write(self._line(backfill))

    def _show(self, backfill: Backfill, *, as_json: bool) -> None:
        if as_json:
            self._print(backfill_json(backfill))
        else:
            self.stdout.write(self._line(backfill))

    def _line(self, backfill: Backfill) -> str:
        return gettext(
            "backfill %(id)s of schedule %(schedule)s (%(job)s), %(start)s to %(end)s: "
            "%(status)s; %(progress)s"
        ) % {
            "id": backfill.pk,
            "schedule": backfill.schedule_id,
            "job": backfill.schedule.job.name,
            "start": backfill.range_start.isoformat(),
            "end": backfill.range_end.isoformat(),
            "status": backfill.get_status_display(),
            "progress": backfill_progress_text(backfill),
        }
