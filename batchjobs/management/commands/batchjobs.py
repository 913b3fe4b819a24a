"""`manage.py batchjobs <subcommand>`: operate batchjobs from a shell or a script.

    list                              jobs with their latest execution
    run NAME [--param K=V]... [--logical-time ISO] [--wait] [--timeout S] [--idempotency-key KEY]
    stop ID | restart ID | abandon ID the JobOperator's operations on an execution
    status [ID]                       the scheduler (beat, workers, counts, next fire), or one
                                      execution with its steps
    preview SCHEDULE_ID [--count N]   the schedule's next fire times
    export [--job NAME]... [--format yaml|json] [--output FILE] [--include-secrets]
    import FILE|- [--format yaml|json] [--dry-run]
    token create USERNAME [--rotate] | token revoke USERNAME

Every subcommand takes --json: one JSON document on stdout (the API's representation), and on
failure {"error": ..., "fields": {...}} on stdout. Without --json, errors go to stderr.

Exit codes a script can rely on:
    0  done (for run without --wait: queued)
    1  run --wait: the execution ended without completing
    2  bad input: an unknown job, execution, schedule or user; an invalid parameter or file
    3  run --wait: gave up waiting (--timeout)
    4  conflict: illegal in the current state (stop a finished execution, restart a COMPLETED
       one, start a completed batch instance or a disabled job)
"""

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework.authtoken.models import Token

from batchjobs.errors import BatchJobsError, Conflict, InvalidInput, NotFound
from batchjobs.models import BatchJob, BatchLog, BatchSchedule, ExecutionStatus, Trigger
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.scheduling.preview import PreviewFire
from batchjobs.selectors.jobs import job_list
from batchjobs.selectors.scheduler import SchedulerStatus, scheduler_status
from batchjobs.selectors.schedules import schedule_get
from batchjobs.services import operator
from batchjobs.services.definition_serializers import JobDefinitionSerializer
from batchjobs.services.definitions import (
    DOCUMENT_FORMATS,
    definitions_export,
    definitions_import,
    document_dump,
    document_format,
    document_load,
)
from batchjobs.services.schedules import schedule_preview

EXIT_OK, EXIT_NOT_COMPLETED, EXIT_BAD_INPUT, EXIT_WAIT_TIMEOUT, EXIT_CONFLICT = 0, 1, 2, 3, 4
FORMATS = DOCUMENT_FORMATS


def parse_logical_time(text: str | None) -> datetime | None:
    """--logical-time: ISO 8601; a time without a UTC offset is read in TIME_ZONE."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            {"--logical-time": gettext("%(text)s is not an ISO 8601 date and time")
             % {"text": repr(text)}}
        ) from None  # fmt: skip
    return value if value.tzinfo else timezone.make_aware(value)


def parse_param(text: str) -> tuple[str, object]:
    """'k=v' -> (k, v), v read as JSON when it is JSON (3, true, [1]) and as a string if not."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InvalidInput(
            {"--param": gettext("%(text)s is not of the form key=value") % {"text": repr(text)}}
        )
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


# --- what --json prints: the command's own view of the services' results ----------------------

EXECUTION_JSON_FIELDS = (
    "trigger", "status", "scheduled_for", "params", "attempts", "max_attempts",
    "next_attempt_at", "created_at", "started_at", "finished_at", "worker", "result", "error",
    "note", "instance_key", "idempotency_key",
)  # fmt: skip


def json_default(value: Any) -> Any:
    """Times as ISO 8601 (as the API writes them); anything else as its text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def job_json(job: BatchJob) -> dict[str, Any]:
    """A job of job_list() as `list --json` prints it: its definition (secrets masked)
    and what it has done."""
    annotations = vars(job)  # the selector's annotations, which BatchJob's type does not know
    latest = None
    if annotations["latest_execution_id"] is not None:
        latest = {
            "id": annotations["latest_execution_id"],
            "status": annotations["latest_execution_status"],
            "created_at": annotations["latest_execution_created_at"],
        }
    return {
        "id": job.pk,
        **JobDefinitionSerializer(job).data,
        "target": job.target,
        "schedule_count": annotations["schedule_count"] or 0,
        "latest_execution": latest,
    }


def execution_json(execution: BatchLog) -> dict[str, Any]:
    return {
        "id": execution.pk,
        "job": execution.job_id,
        "job_name": execution.job.name,
        "schedule": execution.schedule_id,
        **{name: getattr(execution, name) for name in EXECUTION_JSON_FIELDS},
        "restart_of": execution.restart_of_id,
    }


def scheduler_status_json(status: SchedulerStatus) -> dict[str, Any]:
    due = status.next_due
    return {
        "beat_alive": status.beat_alive,
        "beats": [{"id": beat.beat_id, "last_seen": beat.last_seen} for beat in status.beats],
        "broker_reachable": status.broker_reachable,
        "workers": status.workers,
        "total_jobs": status.total_jobs,
        "executions": status.counts,
        "next_due": None
        if due is None
        else {
            "schedule": due.schedule_id,
            "schedule_kind": due.schedule_kind,
            "job": due.job_id,
            "job_name": due.job_name,
            "job_kind": due.job_kind,
            "at": due.at,
        },
    }


def preview_json(schedule: BatchSchedule, fires: list[PreviewFire]) -> dict[str, Any]:
    return {
        "schedule": schedule.pk,
        "timezone": schedule.timezone,
        "fires": [
            {
                "at": fire.at,
                "local": fire.local,
                "utc_offset_seconds": int(fire.utc_offset.total_seconds()),
                "dst_change": fire.dst_change,
                "excluded": fire.excluded,
                "reason": fire.reason,
                "moved_to": fire.moved_to,
            }
            for fire in fires
        ],
    }


class Command(BaseCommand):
    help = "Operate batch jobs: list, run, stop, restart, abandon, status, preview, export, import."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)

        def command(name: str, help_text: str) -> CommandParser:
            subparser = sub.add_parser(name, help=help_text)
            subparser.add_argument(
                "--json", dest="as_json", action="store_true", help="Print one JSON document."
            )
            return subparser

        command("list", "List jobs with their latest execution.")

        run = command("run", "Start a job now and optionally wait for the outcome.")
        run.add_argument("name", help="The job's name.")
        run.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A job parameter; VALUE is read as JSON if it parses, else as a string.",
        )
        run.add_argument("--wait", action="store_true", help="Wait until the execution ends.")
        run.add_argument(
            "--timeout", type=float, default=3600.0, help="With --wait: give up after seconds."
        )
        run.add_argument(
            "--idempotency-key", default="", help="The same key returns the same execution."
        )
        run.add_argument(
            "--logical-time",
            default=None,
            metavar="ISO",
            help="The instant the run stands for (ISO 8601, e.g. 2027-01-04T00:00+09:00; "
            "without an offset, in TIME_ZONE); by default the start time.",
        )

        for name, help_text in (
            ("stop", "Stop an execution (a running one stops at its next chunk boundary)."),
            ("restart", "Restart a FAILED or STOPPED execution of the same job instance."),
            ("abandon", "Abandon a FAILED or STOPPED execution: it is never restarted."),
        ):
            command(name, help_text).add_argument("id", type=int, help="The execution's id.")

        status = command("status", "The scheduler's status, or one execution with its steps.")
        status.add_argument("id", type=int, nargs="?", help="An execution's id.")

        preview = command("preview", "The next fire times of a schedule.")
        preview.add_argument("schedule", type=int, help="The schedule's id.")
        preview.add_argument("--count", type=int, default=10, help="How many (1-1000).")

        export = command(
            "export", "Write jobs and their schedules, and the run limits, as YAML or JSON."
        )
        export.add_argument(
            "--job",
            action="append",
            dest="jobs",
            metavar="NAME",
            help="Only this job (repeat), with the limits of its queue and host.",
        )
        export.add_argument("--format", choices=FORMATS, help="Default: from --output, else yaml.")
        export.add_argument("--output", "-o", help="Write to this file instead of stdout.")
        export.add_argument(
            "--include-secrets",
            action="store_true",
            help="Write secret header values in clear (default: masked).",
        )

        load = command(
            "import", "Create or update jobs, schedules and limits from a YAML or JSON file."
        )
        load.add_argument("file", help="The file, or - for stdin.")
        load.add_argument("--format", choices=FORMATS, help="Default: from the file's extension.")
        load.add_argument(
            "--dry-run", action="store_true", help="Check everything, change nothing."
        )

        token = command("token", "Create or revoke a user's API token.")
        token.add_argument("action", choices=("create", "revoke"))
        token.add_argument("username")
        token.add_argument(
            "--rotate", action="store_true", help="create: replace an existing token."
        )

    def handle(self, *args, **options) -> None:
        handler = getattr(self, f"_{options['subcommand']}")
        try:
            code = handler(**options)
        except InvalidInput as exc:
            self._fail(options, EXIT_BAD_INPUT, str(exc), exc.field_errors)
        except NotFound as exc:
            self._fail(options, EXIT_BAD_INPUT, str(exc), {})
        except Conflict as exc:
            self._fail(options, EXIT_CONFLICT, str(exc), {})
        except BatchJobsError as exc:
            self._fail(options, EXIT_BAD_INPUT, str(exc), {})
        if code:
            sys.exit(code)

    def _fail(self, options, code: int, message: str, fields: dict) -> None:
        if options.get("as_json"):
            self.stdout.write(json.dumps({"error": message, "fields": fields}))
            sys.exit(code)
        raise CommandError(message, returncode=code)

    def _print(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, default=json_default, ensure_ascii=False))

    # --- subcommands -------------------------------------------------------------------------

    def _list(self, *, as_json: bool, **_) -> int:
        jobs = [job_json(job) for job in job_list()]
        if as_json:
            self._print(jobs)
            return EXIT_OK
        for job in jobs:
            latest = job["latest_execution"]["status"] if job["latest_execution"] else "-"
            state = "enabled" if job["enabled"] else "disabled"
            self.stdout.write(
                f"{job['name']}\t{job['kind']}\t{state}\t{job['schedule_count']} schedule(s)\t"
                f"latest: {latest}\t{job['target']}"
            )
        return EXIT_OK

    def _run(
        self, *, name, param, wait, timeout, idempotency_key, logical_time, as_json: bool, **_
    ) -> int:
        params = dict(parse_param(text) for text in param)
        try:
            execution = operator.job_start(
                job_name=name, params=params, trigger=Trigger.CLI,
                idempotency_key=idempotency_key, logical_time=parse_logical_time(logical_time),
            )  # fmt: skip
        except NotFound as exc:
            raise InvalidInput({"name": str(exc)}) from exc
        if not wait:
            self._report(execution, as_json=as_json)
            return EXIT_OK
        give_up = time.monotonic() + timeout
        while execution.status not in FINAL_STATUSES:
            if time.monotonic() > give_up:
                self._report(execution, as_json=as_json)
                self.stderr.write(
                    gettext("gave up waiting after %(seconds)ss") % {"seconds": f"{timeout:g}"}
                )
                return EXIT_WAIT_TIMEOUT
            time.sleep(0.25)
            execution = BatchLog.objects.select_related("job").get(pk=execution.pk)
        self._report(execution, as_json=as_json)
        return EXIT_OK if execution.status == ExecutionStatus.COMPLETED else EXIT_NOT_COMPLETED

    def _report(self, execution: BatchLog, *, as_json: bool) -> None:
        summary = {
            "id": execution.pk,
            "job": execution.job.name,
            "status": execution.status,
            "attempts": execution.attempts,
            "result": execution.result,
            "error": execution.error,
            "logical_time": execution.logical_time,
            "data_interval_start": execution.data_interval_start,
            "data_interval_end": execution.data_interval_end,
        }
        if as_json:
            self._print(summary)
            return
        line = f"execution {execution.pk} of {execution.job.name}: {execution.status}"
        if execution.attempts:
            line += f" after {execution.attempts} attempt(s)"
        self.stdout.write(line)
        if execution.error:
            self.stdout.write(execution.error.rstrip())

    def _operate(self, execution: BatchLog, verb: str, *, as_json: bool) -> int:
        if as_json:
            self._print(execution_json(execution))
        else:
            self.stdout.write(
                f"{verb} execution {execution.pk} of {execution.job.name}: {execution.status}"
            )
        return EXIT_OK

    def _stop(self, *, id: int, as_json: bool, **_) -> int:
        return self._operate(operator.execution_stop(execution_id=id), "stop:", as_json=as_json)

    def _restart(self, *, id: int, as_json: bool, **_) -> int:
        restarted = operator.execution_restart(execution_id=id)
        return self._operate(restarted, f"restarted {id} as", as_json=as_json)

    def _abandon(self, *, id: int, as_json: bool, **_) -> int:
        return self._operate(
            operator.execution_abandon(execution_id=id), "abandon:", as_json=as_json
        )

    def _status(self, *, id: int | None, as_json: bool, **_) -> int:
        if id is not None:
            return self._execution_status(id, as_json=as_json)
        status = scheduler_status()
        if as_json:
            self._print(scheduler_status_json(status))
            return EXIT_OK
        now = timezone.now()
        if not status.broker_reachable:
            self.stdout.write("beat: unknown (the broker does not answer)")
        elif status.beats:
            seen = ", ".join(
                f"{beat.beat_id} ({(now - beat.last_seen).total_seconds():.0f}s ago)"
                for beat in status.beats
            )
            self.stdout.write(f"beat: alive: {seen}")
        else:
            self.stdout.write("beat: not running (no heartbeat)")
        if status.workers is not None:
            self.stdout.write(f"workers: {', '.join(status.workers) or 'none present'}")
        self.stdout.write(f"jobs: {status.total_jobs}")
        counts = ", ".join(f"{name} {count}" for name, count in status.counts.items())
        self.stdout.write(f"executions: {counts}")
        due = status.next_due
        self.stdout.write(
            f"next due: {due.job_name} (schedule {due.schedule_id}, {due.schedule_kind}) "
            f"at {due.at.isoformat()}"
            if due
            else "next due: nothing scheduled"
        )
        return EXIT_OK

    def _execution_status(self, execution_id: int, *, as_json: bool) -> int:
        summary = operator.execution_summary(execution_id=execution_id)
        steps = operator.execution_step_summaries(execution_id=execution_id)
        if as_json:
            self._print({**summary, "steps": steps})
            return EXIT_OK
        self.stdout.write(
            f"execution {summary['id']} of {summary['job']}: {summary['status']} "
            f"({summary['trigger']}, {summary['attempts']} attempt(s))"
        )
        if summary["error"]:
            self.stdout.write(summary["error"].rstrip())
        for step in steps:
            partition = f"[{step['partition']}]" if step["partition"] else ""
            self.stdout.write(
                f"  {step['step']}{partition}: {step['status']} read {step['read_count']} "
                f"written {step['write_count']} skipped "
                f"{step['read_skip_count'] + step['process_skip_count'] + step['write_skip_count']}"
            )
        return EXIT_OK

    def _preview(self, *, schedule: int, count: int, as_json: bool, **_) -> int:
        found = schedule_get(schedule_id=schedule)
        fires = schedule_preview(schedule=found, count=count)
        if as_json:
            self._print(preview_json(found, fires))
            return EXIT_OK
        self.stdout.write(f"schedule {found.pk} of {found.job.name}: {found.summary}")
        if not fires:
            self.stdout.write("no more fires: the schedule has finished")
        for fire in fires:
            marker = "  (DST change before this fire)" if fire.dst_change else ""
            if fire.moved_to is not None:
                moved = fire.moved_to.astimezone(fire.local.tzinfo).isoformat()
                marker += f"  MOVED to {moved}: {fire.reason}"
            elif fire.excluded:
                marker += f"  EXCLUDED: {fire.reason}"
            self.stdout.write(f"{fire.local.isoformat()}  = {fire.at.isoformat()}{marker}")
        return EXIT_OK

    def _export(self, *, jobs, format, output, include_secrets, as_json, **_) -> int:
        fmt = "json" if as_json else document_format(output, format)
        document = definitions_export(names=jobs, include_secrets=include_secrets)
        text = document_dump(document, fmt)
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
        return EXIT_OK

    def _import(self, *, file, format, dry_run, as_json, **_) -> int:
        if file == "-":
            text = sys.stdin.read()
        else:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(
                    {
                        "file": gettext("Cannot read %(file)s: %(error)s")
                        % {"file": file, "error": exc}
                    }
                ) from exc
        document = document_load(text, document_format(file, format))
        result = definitions_import(document=document, dry_run=dry_run)
        if as_json:
            self._print(vars(result))
            return EXIT_OK
        prefix = "dry run, nothing changed: would have " if dry_run else ""
        self.stdout.write(
            f"{prefix}jobs: {result.jobs_created} created, {result.jobs_updated} updated; "
            f"schedules: {result.schedules_created} created, {result.schedules_updated} "
            f"updated, {result.schedules_deleted} deleted; limits: {result.limits_created} "
            f"created, {result.limits_updated} updated; calendars: {result.calendars_created} "
            f"created, {result.calendars_updated} updated"
        )
        return EXIT_OK

    def _token(self, *, action, username, rotate, as_json, **_) -> int:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise InvalidInput(
                {"username": gettext("no user named %(name)s") % {"name": repr(username)}}
            )
        if action == "revoke":
            deleted, _ = Token.objects.filter(user=user).delete()
            if as_json:
                self._print({"username": username, "revoked": bool(deleted)})
            else:
                self.stdout.write(f"token of {username} {'revoked' if deleted else 'absent'}")
            return EXIT_OK
        with transaction.atomic():
            if rotate:
                Token.objects.filter(user=user).delete()
            token, created = Token.objects.get_or_create(user=user)
        if as_json:
            self._print({"username": username, "token": token.key, "created": created})
        else:
            self.stdout.write(token.key)
        return EXIT_OK
