"""Prometheus metrics at /metrics, computed at scrape time from the database and the broker.

Nothing is counted in process memory, so every web process answers the same, however many run.
Figures about executions cover those created in the last 24 hours (WINDOW): they are gauges
over a sliding window, not counters; read them as they are (`batchjobs_fires_24h`,
`histogram_quantile(0.95, sum by (le) (batchjobs_fire_lag_seconds_bucket))`), not through rate().
Each scrape runs a handful of aggregate queries on indexed columns plus one Redis pipeline.

Access: anyone when BATCHJOBS_METRICS_PUBLIC is true (for a scraper on a private network);
otherwise a staff user, logged in to the admin or sending a staff user's API token
(`Authorization: Token <key>`; Prometheus: `authorization: {type: Token, credentials: <key>}`).
"""

from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from batchjobs.execution.publish import queue_depths
from batchjobs.models import (
    AttemptStatus,
    BatchAttempt,
    BatchLog,
    BatchSchedule,
    ExecutionStatus,
    Trigger,
)
from batchjobs.models.clock import database_now
from batchjobs.models.execution import ACTIVE_STATUSES, FINAL_STATUSES
from batchjobs.selectors.occurrences import occurrences_recorded_by_outcome
from batchjobs.selectors.set_aside import set_aside_counts

# The classic text format, which every Prometheus reads and generate_latest() writes; spelled out
# because prometheus_client's own name for it (and its default) changed in 0.23.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WINDOW = timedelta(hours=24)
# A live schedule this late is overdue: beat is down, or cannot keep up.
OVERDUE_AFTER = timedelta(minutes=1)
FIRE_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)


def _seconds(value: timedelta | None) -> float:
    return value.total_seconds() if value is not None else 0.0


def _histogram_aggregates(field: str, buckets: Iterable[float]) -> dict[str, Aggregate]:
    """Cumulative bucket counts, count and sum of the duration annotated as `field`."""
    aggregates: dict[str, Aggregate] = {
        f"le_{index}": Count("pk", filter=Q(**{f"{field}__lte": timedelta(seconds=bound)}))
        for index, bound in enumerate(buckets)
    }
    aggregates["count"] = Count("pk")
    aggregates["sum"] = Sum(field, output_field=DurationField())
    return aggregates


def _histogram_buckets(row: Mapping[str, Any], buckets: Iterable[float]) -> list[tuple[str, float]]:
    return [(str(bound), row[f"le_{index}"]) for index, bound in enumerate(buckets)] + [
        ("+Inf", row["count"])
    ]


def _histogram_sum(row: Mapping[str, Any]) -> float:
    # Read through a Mapping: the stubs' row type does not see the **-spread aggregates.
    return _seconds(row["sum"])


def _recent(since) -> QuerySet[BatchLog]:
    # Naming every status lets PostgreSQL use the (status, created_at) index.
    return BatchLog.objects.filter(status__in=ExecutionStatus.values, created_at__gte=since)


class BatchJobsCollector:
    """A prometheus_client custom collector: every collect() reads the current figures."""

    def collect(self) -> Iterator[Metric]:
        now = database_now()
        since = now - WINDOW
        yield from self._executions(since)
        yield from self._fires(since)
        yield from self._durations(since)
        yield from self._attempts(since)
        overdue = GaugeMetricFamily(
            "batchjobs_schedules_overdue",
            "Live schedules whose next fire is more than a minute late (beat down or behind); "
            "set-aside ones are counted apart.",
        )
        overdue.add_metric(
            [],
            BatchSchedule.objects.filter(
                paused=False,
                job__enabled=True,
                next_fire_at__lt=now - OVERDUE_AFTER,
                set_aside_at__isnull=True,
            ).count(),
        )
        yield overdue
        set_aside = set_aside_counts()
        rows = GaugeMetricFamily(
            "batchjobs_set_aside_rows",
            "Rows set aside because processing them raised, waiting for an operator: schedules "
            "beat does not fire until they are saved, executions housekeeping leaves alone.",
            labels=["kind"],
        )
        rows.add_metric(["schedule"], set_aside.schedules)
        rows.add_metric(["execution"], set_aside.executions)
        yield rows
        yield self._occurrences(since)
        yield from self._broker()

    def _occurrences(self, since) -> Metric:
        occurrences = GaugeMetricFamily(
            "batchjobs_occurrences_24h",
            "Nominal fires of schedules recorded in the last 24 hours, by what became of them "
            "(fired, moved, skipped_overlap, coalesced, missed_skipped, dropped, excluded, "
            "paused, job_disabled, over_max_runs, deduplicated).",
            labels=["outcome"],
        )
        for outcome, fires in occurrences_recorded_by_outcome(since=since).items():
            occurrences.add_metric([outcome], fires)
        return occurrences

    def _executions(self, since) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "batchjobs_executions_active",
            "Executions queued or running now, whatever their age, by status.",
            labels=["status"],
        )
        counts = dict(
            BatchLog.objects.filter(status__in=ACTIVE_STATUSES)
            .order_by()
            .values("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        for status in ACTIVE_STATUSES:
            active.add_metric([status], counts.get(status, 0))
        yield active

        held = GaugeMetricFamily(
            "batchjobs_executions_held",
            "QUEUED executions waiting for a limit (runs at once or calls per second), by the "
            'limit that holds them ("host:example.com", "queue:reports", "job:12").',
            labels=["limit"],
        )
        for key, n in (
            BatchLog.objects.filter(status=ExecutionStatus.QUEUED)
            .exclude(held_by="")
            .order_by()
            .values("held_by")
            .annotate(n=Count("pk"))
            .values_list("held_by", "n")
        ):
            held.add_metric([key], n)
        yield held

        recent = GaugeMetricFamily(
            "batchjobs_executions_24h",
            "Executions created in the last 24 hours, by current status.",
            labels=["status"],
        )
        counts = dict(
            _recent(since)
            .order_by()
            .values("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        for value in ExecutionStatus.values:
            recent.add_metric([value], counts.get(value, 0))
        yield recent

    def _fires(self, since) -> Iterator[Metric]:
        fired = _recent(since).filter(trigger=Trigger.SCHEDULE)
        fires = GaugeMetricFamily(
            "batchjobs_fires_24h",
            "Executions created by schedules in the last 24 hours (skipped ones too), by job; "
            "what became of every nominal fire: batchjobs_occurrences_24h.",
            labels=["job"],
        )
        for name, n in (
            fired.order_by()
            .values("job__name")
            .annotate(n=Count("pk"))
            .values_list("job__name", "n")
        ):
            fires.add_metric([name], n)
        yield fires

        lag = (
            fired.exclude(status=ExecutionStatus.SKIPPED)
            .filter(scheduled_for__isnull=False)
            .annotate(
                lag=ExpressionWrapper(
                    F("created_at") - F("scheduled_for"), output_field=DurationField()
                )
            )
            .aggregate(**_histogram_aggregates("lag", FIRE_LAG_BUCKETS))
        )
        histogram = HistogramMetricFamily(
            "batchjobs_fire_lag_seconds",
            "How late schedules fired (created_at - scheduled_for, jitter included), "
            "over the fires of the last 24 hours.",
        )
        histogram.add_metric(
            [], _histogram_buckets(lag, FIRE_LAG_BUCKETS), sum_value=_seconds(lag["sum"])
        )
        yield histogram

    def _durations(self, since) -> Iterator[Metric]:
        rows = (
            _recent(since)
            .filter(status__in=FINAL_STATUSES, started_at__isnull=False, finished_at__isnull=False)
            .annotate(
                duration=ExpressionWrapper(
                    F("finished_at") - F("started_at"), output_field=DurationField()
                )
            )
            .order_by()
            .values("job__name")
            .annotate(**_histogram_aggregates("duration", DURATION_BUCKETS))
        )
        histogram = HistogramMetricFamily(
            "batchjobs_execution_duration_seconds",
            "How long finished executions ran (first start to end, retries included), "
            "over those created in the last 24 hours, by job.",
            labels=["job"],
        )
        for row in rows:
            histogram.add_metric(
                [row["job__name"]],
                _histogram_buckets(row, DURATION_BUCKETS),
                sum_value=_histogram_sum(row),
            )
        yield histogram

    def _attempts(self, since) -> Iterator[Metric]:
        retried = _recent(since).aggregate(
            retries=Sum(F("attempts") - 1, filter=Q(attempts__gt=1)),
            executions=Count("pk", filter=Q(attempts__gt=1)),
        )
        retries = GaugeMetricFamily(
            "batchjobs_retries_24h",
            "Attempts after the first, of executions created in the last 24 hours.",
        )
        retries.add_metric([], retried["retries"] or 0)
        yield retries
        retried_executions = GaugeMetricFamily(
            "batchjobs_retried_executions_24h",
            "Executions created in the last 24 hours that needed more than one attempt.",
        )
        retried_executions.add_metric([], retried["executions"])
        yield retried_executions
        reaped = GaugeMetricFamily(
            "batchjobs_reaped_24h",
            "Attempts the reaper ended LOST (their worker died), of executions created in the "
            "last 24 hours.",
        )
        reaped.add_metric(
            [],
            BatchAttempt.objects.filter(
                status=AttemptStatus.LOST,
                execution__status__in=ExecutionStatus.values,
                execution__created_at__gte=since,
            ).count(),
        )
        yield reaped

    def _broker(self) -> Iterator[Metric]:
        from kombu.exceptions import OperationalError
        from redis import RedisError

        from batchjobs.selectors.liveness import beat_heartbeats

        up = GaugeMetricFamily("batchjobs_broker_up", "1 if the broker (Redis) answered.")
        try:
            depths = queue_depths()
            beats = len(beat_heartbeats())
        except (OperationalError, RedisError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        alive = GaugeMetricFamily(
            "batchjobs_beats_alive", "Beat processes whose heartbeat is fresh (0: none fires)."
        )
        alive.add_metric([], beats)
        yield alive
        depth = GaugeMetricFamily(
            "batchjobs_queue_depth",
            "Messages waiting in each queue (its priority sub-queues included).",
            labels=["queue"],
        )
        for queue, n in sorted(depths.items()):
            depth.add_metric([queue], n)
        yield depth


def metrics_allowed(request: HttpRequest) -> bool:
    if settings.BATCHJOBS_METRICS_PUBLIC:
        return True
    user = request.user
    if not user.is_authenticated:
        from rest_framework.authentication import TokenAuthentication
        from rest_framework.exceptions import AuthenticationFailed
        from rest_framework.request import Request

        try:
            authenticated = TokenAuthentication().authenticate(Request(request))
        except AuthenticationFailed:
            return False
        user = authenticated[0] if authenticated else user
    return user.is_authenticated and user.is_active and user.is_staff


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "Log in as a staff user, send a staff user's API token, or set "
            "BATCHJOBS_METRICS_PUBLIC.\n",
            status=403,
            content_type="text/plain",
        )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BatchJobsCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE)
