"""`manage.py batchjobs <subcommand>`: operate batchjobs from a shell or a script.

Exit codes a script can rely on: 0 done (or queued, without --wait), 1 the execution ended
without completing, 2 bad input (unknown job, invalid parameter), 3 --wait gave up.
"""

import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batchjobs.errors import BatchJobsError, InvalidInput
from batchjobs.models import BatchJob, BatchLog, ExecutionStatus, Trigger
from batchjobs.models.execution import FINAL_STATUSES
from batchjobs.services.executions import execution_start

EXIT_OK, EXIT_NOT_COMPLETED, EXIT_BAD_INPUT, EXIT_WAIT_TIMEOUT = 0, 1, 2, 3


def parse_param(text: str) -> tuple[str, object]:
    """'k=v' -> (k, v), v read as JSON when it is JSON (3, true, [1]) and as a string if not."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InvalidInput({"--param": f"{text!r} is not of the form key=value"})
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


class Command(BaseCommand):
    help = "Operate batch jobs: run one now (more subcommands with the API issue)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        run = sub.add_parser("run", help="Start a job now and optionally wait for the outcome.")
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
            "--json", dest="as_json", action="store_true", help="Print one JSON object."
        )

    def handle(self, *args, **options) -> None:
        try:
            code = getattr(self, f"_{options['subcommand']}")(**options)
        except InvalidInput as exc:
            self._fail(options, EXIT_BAD_INPUT, str(exc), exc.field_errors)
        except BatchJobsError as exc:
            self._fail(options, EXIT_BAD_INPUT, str(exc), {})
        if code:
            sys.exit(code)

    def _fail(self, options, code: int, message: str, fields: dict) -> None:
        if options.get("as_json"):
            self.stdout.write(json.dumps({"error": message, "fields": fields}))
            sys.exit(code)
        raise CommandError(message, returncode=code)

    def _run(self, *, name, param, wait, timeout, as_json: bool, **_) -> int:
        job = BatchJob.objects.filter(name=name).first()
        if job is None:
            raise InvalidInput({"name": f"no job named {name!r}"})
        params = dict(parse_param(text) for text in param)
        execution = execution_start(job=job, trigger=Trigger.CLI, params=params)
        if not wait:
            self._report(execution, as_json=as_json)
            return EXIT_OK
        give_up = time.monotonic() + timeout
        while execution.status not in FINAL_STATUSES:
            if time.monotonic() > give_up:
                self._report(execution, as_json=as_json)
                self.stderr.write(f"gave up waiting after {timeout:g}s")
                return EXIT_WAIT_TIMEOUT
            time.sleep(0.25)
            execution = BatchLog.objects.get(pk=execution.pk)
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
        }
        if as_json:
            self.stdout.write(json.dumps(summary, default=str))
            return
        line = f"execution {execution.pk} of {execution.job.name}: {execution.status}"
        if execution.attempts:
            line += f" after {execution.attempts} attempt(s)"
        self.stdout.write(line)
        if execution.error:
            self.stdout.write(execution.error.rstrip())
