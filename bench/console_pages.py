"""The console's pages on a busy installation against stock Django admin pages of the same
rows, side by side: server time (p50/p95) and queries per page.

The data (console_support.py): 1,000 jobs and 100,000 executions over 30 days in PostgreSQL,
with attempts, steps, log lines, schedules and tags. A superuser is logged in with Django's test
Client, in this process: a page's server time is the time from the request to the response
inside Django (middleware, view, queries, template), without a network or a web server. Each
page is requested --warmup times, then --requests times (default 20), alternating with its
stock counterpart, so that noise on the shared machine hits both alike; then once more under
CaptureQueriesContext to count its queries.

Pages (requested by URL only, never by their HTML, so they may change freely):

- home `/admin/`, the dashboard and its live fragment -> stock: the executions changelist
- the execution list, filtered (FAILED, last 7 days), searched in error text (?q=)
  -> stock: the changelist with the same query string
- an execution page: FAILED after 3 attempts with 200 log lines each; a running batch job
  -> stock: the change view of the same execution
- the job page (a job with 500 executions), the jobs list -> stock: change view, changelist

"Stock" is a plain ModelAdmin on an AdminSite of this script's own: for executions
list_display id, job, status, trigger, created_at, finished_at; list_filter status and
created_at; search_fields error; raw_id_fields for every foreign key; attempts and steps as
TabularInlines; for jobs list_display name, kind, enabled, queue and the schedules inline.
Django's own templates (not the console's overrides of them). The ratio is ours / stock.

Run (PostgreSQL and Redis required):

    .venv/bin/python bench/console_pages.py [--reuse] [--requests 20] [--no-fail]
                                            [--queries N] [--explain] [--only NAME]

DATABASE_URL (default postgres://postgres@127.0.0.1:5432/bj_console_bench) must name a
database called bj_console_bench*: the bench creates it, migrates it and seeds it (about a
minute), and keeps it. --reuse keeps the data when the database already holds a complete
seeding from the last --max-age-hours (12: the dashboard counts the last 24 hours), and only
migrates it. REDIS_URL defaults to redis://127.0.0.1:6379/11 (the dashboard reads the beat's and
workers' heartbeats there). --queries N prints each page's N slowest queries; --explain also
runs EXPLAIN ANALYZE on the slowest one of each page; --only measures the pages whose name
holds NAME (while working on one page).

Exits 1 when a page's p95 exceeds the budget (--budget-ms, 300), unless --no-fail. The last
line is `RESULT pages=<n> over_budget=<n> worst=<page> worst_p95_ms=<x> median_ratio=<y>`.
"""

import argparse
import os
import re
import statistics
import sys
import time
import types
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ on the path, not the project.
sys.path.insert(0, str(ROOT))

from bench import console_support, support  # noqa: E402
from bench.support import BenchError, percentile  # noqa: E402

DATABASE_PREFIX = "bj_console_bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bj_console_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
STOCK_PREFIX = "bench-stock-admin/"
USERNAME = "bench-console"
# A page's slowest query is explained when it took at least this long.
EXPLAIN_MIN_MS = 2.0


def _environment() -> dict:
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    # The batch jobs the seeded jobs name are the examples' (registered when installed).
    os.environ["BATCHJOBS_EXAMPLES"] = "true"
    return support.database_config(
        prefix=DATABASE_PREFIX,
        bench="the bench",
        usage="creates, seeds and keeps it",
        postgres_reason="the budget is PostgreSQL's",
    )


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


# --- data ---------------------------------------------------------------------------------------


def prepare_data(config: dict, *, reuse: bool, max_age_hours: float) -> console_support.Seeded:
    """The seeded rows: reused if asked and complete and recent, else seeded afresh."""
    if reuse and not support.database_ensure(config):
        support.django_setup_default()
        from batchjobs.models.clock import database_now

        found, at = console_support.seeded(), console_support.seeded_at()
        if found and at and database_now() - at < timedelta(hours=max_age_hours):
            print(f"  reusing the data seeded at {at:%Y-%m-%d %H:%M} UTC")
            return found
        print("  the database holds no complete, recent seeding: seeding it afresh")
        from django.db import connections

        connections.close_all()
    support.database_recreate(config)
    support.django_setup_default()
    from batchjobs.models.clock import database_now

    console_support.seed(now=database_now())
    found = console_support.seeded()
    if found is None:
        raise BenchError("the seeding did not produce the rows the bench requests")
    return found


# --- the stock admin ----------------------------------------------------------------------------


def stock_site_install():
    """An AdminSite of this script's own with plain ModelAdmins of executions and jobs, added
    to the project's URLs under STOCK_PREFIX."""
    from django.conf import settings
    from django.contrib import admin
    from django.urls import clear_url_caches, include, path, resolve, reverse

    from batchjobs.models import BatchAttempt, BatchJob, BatchLog, BatchSchedule, StepExecution

    class StockAttempts(admin.TabularInline):
        model = BatchAttempt
        extra = 0

    class StockSteps(admin.TabularInline):
        model = StepExecution
        extra = 0

    class StockExecutions(admin.ModelAdmin):
        list_display = ("id", "job", "status", "trigger", "created_at", "finished_at")
        list_filter = ("status", "created_at")
        search_fields = ("error",)
        raw_id_fields = tuple(f.name for f in BatchLog._meta.concrete_fields if f.is_relation)
        inlines = [StockAttempts, StockSteps]
        # Django's own templates: the console overrides the per-model ones.
        change_list_template = "admin/change_list.html"
        change_form_template = "admin/change_form.html"

    class StockSchedules(admin.TabularInline):
        model = BatchSchedule
        extra = 0

    class StockJobs(admin.ModelAdmin):
        list_display = ("name", "kind", "enabled", "queue")
        list_filter = ("kind", "enabled")
        search_fields = ("name",)
        raw_id_fields = ("created_by",)
        inlines = [StockSchedules]
        change_list_template = "admin/change_list.html"
        change_form_template = "admin/change_form.html"

    # The console's own site, found by its URL: its templates (the shared base_site.html)
    # name its URLs, which the stock site therefore serves too (under console/, never
    # requested). They come first: of two patterns of one name, reverse() takes the last.
    console_site = resolve(reverse("admin:index")).func.admin_site

    class StockSite(admin.AdminSite):
        def get_urls(self):
            return [path("console/", include(console_site.get_urls())), *super().get_urls()]

    site = StockSite(name="stockadmin")
    site.register(BatchLog, StockExecutions)
    site.register(BatchJob, StockJobs)
    urlconf = types.ModuleType("bench_console_urls")
    project = __import__(settings.ROOT_URLCONF, fromlist=["urlpatterns"])
    urlconf.urlpatterns = [path(STOCK_PREFIX, site.urls), *project.urlpatterns]
    sys.modules[urlconf.__name__] = urlconf
    settings.ROOT_URLCONF = urlconf.__name__
    clear_url_caches()


# --- pages --------------------------------------------------------------------------------------


@dataclass
class Page:
    name: str
    url: str
    stock_url: str
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    stock_times: list[float] = field(default_factory=list)
    stock_cpu_times: list[float] = field(default_factory=list)
    queries: list[dict] = field(default_factory=list)
    stock_queries: list[dict] = field(default_factory=list)

    @property
    def p95(self) -> float:
        return percentile(self.times, 0.95)


def pages(seeded: console_support.Seeded, since: str) -> list[Page]:
    from urllib.parse import urlencode

    from django.urls import reverse

    def ours(name: str, *args) -> str:
        return reverse(f"admin:{name}", args=args)

    def stock(name: str, *args) -> str:
        return reverse(f"stockadmin:{name}", args=args)

    failed = {"status__exact": "FAILED", "created_at__gte": since}
    search = {"q": console_support.SEARCH_WORD}
    executions, jobs = "batchjobs_batchlog_changelist", "batchjobs_batchjob_changelist"
    execution, job = "batchjobs_batchlog_change", "batchjobs_batchjob_change"
    return [
        Page("home /admin/", ours("index"), stock(executions)),
        Page("dashboard", ours("batchjobs_dashboard"), stock(executions)),
        Page("dashboard live", ours("batchjobs_dashboard_live"), stock(executions)),
        Page("executions", ours(executions), stock(executions)),
        Page(
            "executions FAILED 7d",
            f"{ours(executions)}?{urlencode(failed)}",
            f"{stock(executions)}?{urlencode(failed)}",
        ),  # fmt: skip
        Page(
            "executions ?q=error",
            f"{ours(executions)}?{urlencode(search)}",
            f"{stock(executions)}?{urlencode(search)}",
        ),  # fmt: skip
        Page(
            "execution FAILED x3",
            ours(execution, seeded.failed_execution_id),
            stock(execution, seeded.failed_execution_id),
        ),  # fmt: skip
        Page(
            "execution running",
            ours(execution, seeded.running_execution_id),
            stock(execution, seeded.running_execution_id),
        ),  # fmt: skip
        Page("job (500 runs)", ours(job, seeded.hot_job_id), stock(job, seeded.hot_job_id)),
        Page("jobs", ours(jobs), stock(jobs)),
    ]


def client_logged_in():
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.filter(username=USERNAME).first()
    if user is None:
        user = get_user_model().objects.create_superuser(USERNAME, "bench@example.com", None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    return client


def timed_get(client, url: str) -> tuple[float, float]:
    """Seconds the request took inside Django, and the CPU seconds this process spent on it
    (which other programs on the machine hardly change); anything but 200 fails the bench (a
    page that redirects, say to ?e=1 for a filter it no longer knows, measures nothing)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.get(url)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if response.status_code != 200:
        where = response.get("Location", "")
        raise BenchError(f"GET {url}: {response.status_code} {where}".strip())
    return seconds, cpu


def measure(client, page_list: list[Page], *, requests: int, warmup: int) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for page in page_list:
        for _ in range(warmup):
            timed_get(client, page.url)
            timed_get(client, page.stock_url)
    # Round after round over every page, ours then stock: a burst of load on the machine falls
    # on all pages and both sides, not on one page.
    for _ in range(requests):
        for page in page_list:
            seconds, cpu = timed_get(client, page.url)
            page.times.append(seconds)
            page.cpu_times.append(cpu)
            seconds, cpu = timed_get(client, page.stock_url)
            page.stock_times.append(seconds)
            page.stock_cpu_times.append(cpu)
    for page in page_list:
        with CaptureQueriesContext(connection) as ours:
            timed_get(client, page.url)
        page.queries = list(ours.captured_queries)
        with CaptureQueriesContext(connection) as stock:
            timed_get(client, page.stock_url)
        page.stock_queries = list(stock.captured_queries)


# --- report -------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f}"


def report(page_list: list[Page], *, budget_ms: float, slowest: int, explain: bool) -> int:
    """The table, the slowest queries if asked, and the RESULT line; the pages over budget.

    Per side: p50 and p95 of the server time, p50 of this process's CPU time, the queries of
    one request and the time PostgreSQL took for them (as Django measured it)."""
    head = f"{'p50':>6} {'p95':>6} {'cpu':>6} {'db':>5} {'qs':>3}"
    print(f"\n{'page (ms)':21} {head} | stock {head} | ratio p95  cpu | "
          f"p95 <= {budget_ms:.0f} ms")  # fmt: skip
    over, ratios = [], []
    for page in page_list:
        ratio = page.p95 / percentile(page.stock_times, 0.95)
        cpu_ratio = percentile(page.cpu_times, 0.5) / percentile(page.stock_cpu_times, 0.5)
        ratios.append(ratio)
        passed = page.p95 * 1000 <= budget_ms
        if not passed:
            over.append(page)
        ours = _side(page.times, page.cpu_times, page.queries)
        stock = _side(page.stock_times, page.stock_cpu_times, page.stock_queries)
        print(f"{page.name:21} {ours} |       {stock} | {ratio:8.2f}x {cpu_ratio:4.1f}x | "
              f"{'ok' if passed else 'OVER'}")  # fmt: skip
    if slowest or explain:
        for page in page_list:
            _print_queries(page, slowest or 1, explain)
    worst = max(page_list, key=lambda page: page.p95)
    print(f"load average at the end: {_load()}")
    print(
        f"RESULT pages={len(page_list)} over_budget={len(over)} worst={worst.name!r} "
        f"worst_p95_ms={worst.p95 * 1000:.1f} median_ratio={statistics.median(ratios):.2f}"
    )
    return len(over)


def _side(times: list[float], cpu_times: list[float], queries: list[dict]) -> str:
    database = sum(float(query["time"] or 0) for query in queries)
    p50, p95, cpu = (_ms(percentile(values, q)) for values, q in
                     ((times, 0.5), (times, 0.95), (cpu_times, 0.5)))  # fmt: skip
    return f"{p50} {p95} {cpu} {database * 1000:5.0f} {len(queries):3}"


def _print_queries(page: Page, count: int, explain: bool) -> None:
    from django.db import connection

    ranked = sorted(page.queries, key=lambda q: float(q["time"] or 0), reverse=True)
    print(f"\n== {page.name}: the slowest of its {len(page.queries)} queries")
    for query in ranked[:count]:
        # The column list says little and hides the rest: the FROM and WHERE tell the query.
        sql = re.sub(r"^SELECT .*? FROM ", "SELECT ... FROM ", query["sql"], count=1, flags=re.S)
        print(f"  {float(query['time']) * 1000:6.1f} ms  {sql[:700]}")
    if explain and ranked and float(ranked[0]["time"]) * 1000 >= EXPLAIN_MIN_MS:
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {ranked[0]['sql']}")
            print("\n".join("    " + row[0] for row in cursor.fetchall()))


# --- main ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", action="store_true", help="keep a complete, recent seeding")
    parser.add_argument("--max-age-hours", type=float, default=12.0, help="for --reuse (12)")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page (20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed requests first (2)")
    parser.add_argument("--budget-ms", type=float, default=300.0, help="p95 budget (300)")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even over budget")
    parser.add_argument("--queries", type=int, default=0, help="print N slowest queries/page")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest")
    parser.add_argument("--only", default="", help="pages whose name holds this, e.g. execution")
    args = parser.parse_args()
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be at least 1 and --warmup at least 0")
    try:
        config = _environment()
    except BenchError as exc:
        print(f"console_pages: {exc}", file=sys.stderr)
        return 2
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    support.exit_on_sigterm()
    try:
        return _bench(args, config)
    except BenchError as exc:
        print(f"console_pages: {exc}", file=sys.stderr)
        return 1


def _bench(args: argparse.Namespace, config: dict) -> int:
    print(f"console_pages: database={config['NAME']} requests={args.requests} "
          f"warmup={args.warmup} cpus={os.cpu_count()} load={_load()}")  # fmt: skip
    seeded = prepare_data(config, reuse=args.reuse, max_age_hours=args.max_age_hours)
    from batchjobs.models.clock import database_now

    stock_site_install()
    # As the admin's date filter writes it: the day's start, with its offset.
    since = str(
        (database_now() - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    )
    page_list = [page for page in pages(seeded, since) if args.only in page.name]
    if not page_list:
        raise BenchError(f"no page's name holds {args.only!r}")
    started = time.perf_counter()
    measure(client_logged_in(), page_list, requests=args.requests, warmup=args.warmup)
    print(f"  measured {len(page_list)} pages in {time.perf_counter() - started:.1f} s")
    over = report(page_list, budget_ms=args.budget_ms, slowest=args.queries, explain=args.explain)
    return 1 if over and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(main())
