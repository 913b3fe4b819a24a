"""Routes under /api/: the v1 API, the seed-era aliases, the schema and Swagger UI.

No trailing slashes: the paths are the issue's (jobs/{id}/start, schedules/{id}/preview, ...).
"""

from django.urls import include, path, re_path

from . import views
from .throttling import PROCESS_LOCAL_THROTTLES

v1 = [
    path("jobs", views.JobListCreate.as_view(), name="job-list"),
    path("jobs/<int:pk>", views.JobDetail.as_view(), name="job-detail"),
    path("jobs/<int:pk>/start", views.JobStart.as_view(), name="job-start"),
    path(
        "jobs/<int:pk>/start-next-instance",
        views.JobStartNextInstance.as_view(),
        name="job-start-next-instance",
    ),
    path("jobs/<int:pk>/enable", views.JobEnable.as_view(), name="job-enable"),
    path("jobs/<int:pk>/disable", views.JobDisable.as_view(), name="job-disable"),
    path("jobs/<int:pk>/test-fire", views.JobTestFire.as_view(), name="job-test-fire"),
    path("schedules", views.ScheduleListCreate.as_view(), name="schedule-list"),
    path("schedules/<int:pk>", views.ScheduleDetail.as_view(), name="schedule-detail"),
    path("schedules/<int:pk>/pause", views.SchedulePause.as_view(), name="schedule-pause"),
    path("schedules/<int:pk>/resume", views.ScheduleResume.as_view(), name="schedule-resume"),
    path("schedules/<int:pk>/preview", views.SchedulePreview.as_view(), name="schedule-preview"),
    path("executions", views.ExecutionList.as_view(), name="execution-list"),
    path("executions/running", views.ExecutionRunning.as_view(), name="execution-running"),
    path("executions/<int:pk>", views.ExecutionDetail.as_view(), name="execution-detail"),
    path("executions/<int:pk>/stop", views.ExecutionStop.as_view(), name="execution-stop"),
    path("executions/<int:pk>/restart", views.ExecutionRestart.as_view(), name="execution-restart"),
    path("executions/<int:pk>/abandon", views.ExecutionAbandon.as_view(), name="execution-abandon"),
    path("executions/<int:pk>/summary", views.ExecutionSummary.as_view(), name="execution-summary"),
    path(
        "executions/<int:pk>/steps",
        views.ExecutionStepSummaries.as_view(),
        name="execution-steps",
    ),
    path("handlers", views.HandlerList.as_view(), name="handler-list"),
    path("batch-jobs", views.BatchJobList.as_view(), name="batch-job-list"),
    path("scheduler", views.SchedulerStatus.as_view(), name="scheduler-status"),
]

seed = [
    path("v1/batch-job", views.SeedBatchJobCreate.as_view(), name="seed-batch-job"),
    path("v1/logs/job/<int:jobId>", views.SeedJobLogs.as_view(), name="seed-job-logs"),
    path("jobs/<str:jobName>/start", views.SeedJobStart.as_view(), name="seed-job-start"),
    path("scheduler", views.SeedScheduler.as_view(), name="seed-scheduler"),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    *seed,
    # The API's description answers while Redis is away: its rate limit counts in memory.
    path(
        "schema/",
        views.SchemaView.as_view(throttle_classes=PROCESS_LOCAL_THROTTLES),
        name="schema",
    ),
    path("docs/", views.DocsView.as_view(throttle_classes=PROCESS_LOCAL_THROTTLES), name="docs"),
    re_path(r"", views.api_not_found),
]
