"""Routes under /api/: the v1 API, the seed-era aliases, the schema and Swagger UI.

No trailing slashes: the paths are the issue's (jobs/{id}/start, schedules/{id}/preview, ...).
"""

from django.urls import include, path, re_path

from .throttling import PROCESS_LOCAL_THROTTLES
from .views import (
    backfills,
    base,
    calendars,
    definitions,
    dependencies,
    docs,
    executions,
    jobs,
    limits,
    occurrences,
    registries,
    scheduler,
    schedules,
    seed_aliases,
)

v1 = [
    path("jobs", jobs.JobListCreate.as_view(), name="job-list"),
    path("jobs/<int:pk>", jobs.JobDetail.as_view(), name="job-detail"),
    path("jobs/<int:pk>/start", jobs.JobStart.as_view(), name="job-start"),
    path(
        "jobs/<int:pk>/start-next-instance",
        jobs.JobStartNextInstance.as_view(),
        name="job-start-next-instance",
    ),
    path("jobs/<int:pk>/enable", jobs.JobEnable.as_view(), name="job-enable"),
    path("jobs/<int:pk>/disable", jobs.JobDisable.as_view(), name="job-disable"),
    path("jobs/<int:pk>/test-fire", jobs.JobTestFire.as_view(), name="job-test-fire"),
    path("jobs/<int:pk>/graph", dependencies.JobGraph.as_view(), name="job-graph"),
    path("dependencies", dependencies.DependencyListCreate.as_view(), name="dependency-list"),
    path(
        "dependencies/<int:pk>", dependencies.DependencyDetail.as_view(), name="dependency-detail"
    ),
    path("schedules", schedules.ScheduleListCreate.as_view(), name="schedule-list"),
    path("schedules/<int:pk>", schedules.ScheduleDetail.as_view(), name="schedule-detail"),
    path("schedules/<int:pk>/pause", schedules.SchedulePause.as_view(), name="schedule-pause"),
    path("schedules/<int:pk>/resume", schedules.ScheduleResume.as_view(), name="schedule-resume"),
    path(
        "schedules/<int:pk>/preview", schedules.SchedulePreview.as_view(), name="schedule-preview"
    ),
    path(
        "schedules/<int:pk>/occurrences",
        occurrences.ScheduleOccurrences.as_view(),
        name="schedule-occurrences",
    ),
    path("executions", executions.ExecutionList.as_view(), name="execution-list"),
    path("executions/running", executions.ExecutionRunning.as_view(), name="execution-running"),
    path("executions/<int:pk>", executions.ExecutionDetail.as_view(), name="execution-detail"),
    path("executions/<int:pk>/stop", executions.ExecutionStop.as_view(), name="execution-stop"),
    path(
        "executions/<int:pk>/restart",
        executions.ExecutionRestart.as_view(),
        name="execution-restart",
    ),
    path(
        "executions/<int:pk>/abandon",
        executions.ExecutionAbandon.as_view(),
        name="execution-abandon",
    ),
    path(
        "executions/<int:pk>/summary",
        executions.ExecutionSummary.as_view(),
        name="execution-summary",
    ),
    path(
        "executions/<int:pk>/attempts/<int:number>/log",
        executions.ExecutionAttemptLog.as_view(),
        name="execution-attempt-log",
    ),
    path(
        "executions/<int:pk>/steps",
        executions.ExecutionStepSummaries.as_view(),
        name="execution-steps",
    ),
    path("backfills", backfills.BackfillListCreate.as_view(), name="backfill-list"),
    path("backfills/<int:pk>", backfills.BackfillDetail.as_view(), name="backfill-detail"),
    path("backfills/<int:pk>/pause", backfills.BackfillPause.as_view(), name="backfill-pause"),
    path("backfills/<int:pk>/resume", backfills.BackfillResume.as_view(), name="backfill-resume"),
    path("backfills/<int:pk>/cancel", backfills.BackfillCancel.as_view(), name="backfill-cancel"),
    path("calendars", calendars.CalendarListCreate.as_view(), name="calendar-list"),
    path("calendars/<int:pk>", calendars.CalendarDetail.as_view(), name="calendar-detail"),
    path("calendars/<int:pk>/days", calendars.CalendarDays.as_view(), name="calendar-days"),
    path("limits", limits.LimitListCreate.as_view(), name="limit-list"),
    path("limits/<int:pk>", limits.LimitDetail.as_view(), name="limit-detail"),
    path("definitions", definitions.Definitions.as_view(), name="definitions"),
    path("handlers", registries.HandlerList.as_view(), name="handler-list"),
    path("batch-jobs", registries.BatchJobList.as_view(), name="batch-job-list"),
    path("scheduler", scheduler.SchedulerStatus.as_view(), name="scheduler-status"),
]

seed = [
    path("v1/batch-job", seed_aliases.SeedBatchJobCreate.as_view(), name="seed-batch-job"),
    path("v1/logs/job/<int:jobId>", seed_aliases.SeedJobLogs.as_view(), name="seed-job-logs"),
    path("jobs/<str:jobName>/start", seed_aliases.SeedJobStart.as_view(), name="seed-job-start"),
    path("scheduler", seed_aliases.SeedScheduler.as_view(), name="seed-scheduler"),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    *seed,
    # The API's description answers while Redis is away: its rate limit counts in memory.
    path(
        "schema/",
        docs.SchemaView.as_view(throttle_classes=PROCESS_LOCAL_THROTTLES),
        name="schema",
    ),
    path("docs/", docs.DocsView.as_view(throttle_classes=PROCESS_LOCAL_THROTTLES), name="docs"),
    re_path(r"", base.api_not_found),
]
