from django.core.management.base import BaseCommand, CommandParser

from batchjobs_examples.demo import demo_seed


class Command(BaseCommand):
    help = (
        "Create the demo jobs (with their schedules) that do not exist yet, and start a first "
        "run of each new one. "
        "The HTTP demo job calls BASE_URL/demo/ping, so BATCHJOBS_HTTP_ALLOWLIST must cover it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where the web process listens (default: %(default)s).",
        )

    def handle(self, *args, base_url: str, **options) -> None:
        for outcome in demo_seed(base_url=base_url):
            if outcome.error:
                self.stderr.write(f"demo job {outcome.name} not created: {outcome.error}")
            elif outcome.first_run is not None:  # created: every new job gets a first run
                self.stdout.write(
                    f"demo job {outcome.name} created; first run: execution #{outcome.first_run.pk}"
                )
            else:
                self.stdout.write(f"demo job {outcome.name} exists; left as it is")
