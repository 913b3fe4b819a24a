"""The upcoming runs across jobs: every fire of every live schedule (not paused nor set aside, of
an enabled job) in a window from now, as the schedule's own preview computes them (jitter, runs
left, DST, and the fires its calendars exclude or move, marked), grouped by day and hour in the
reader's zone and by job. Bounded: so many schedules, so many fires per schedule and in all;
what was cut is said."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from batchjobs.models import BatchSchedule, JobTag
from batchjobs.models.clock import database_now
from batchjobs.scheduling.calendars import schedules_calendars
from batchjobs.scheduling.preview import schedule_fires

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_WINDOW = "24h"
# A per-minute schedule fires 10,080 times in 7 days: the first fires of each schedule show
# when and how often it runs; the list stays readable and the page fast (1,000 daily schedules
# over 7 days: the read ~0.2-0.3 s, rendering 2,000 fires took ~1 s more on a shared 2 cores).
FIRES_PER_SCHEDULE = 100
FIRES_IN_ALL = 1_000
SCHEDULES_LIMIT = 500
TAGS_LISTED = 100


@dataclass(frozen=True)
class UpcomingFire:
    at: datetime  # UTC, with the schedule's jitter
    schedule: BatchSchedule  # with its job
    excluded: bool  # a calendar excludes its day: it does not fire at `at`
    reason: str
    moved_to: datetime | None  # where a calendar's "move" policy puts it


@dataclass
class JobFires:
    job_id: int
    job_name: str
    fires: list[UpcomingFire] = field(default_factory=list)
    # Some schedule of the job has more fires in the window than are listed.
    capped: bool = False


@dataclass(frozen=True)
class HourFires:
    hour: datetime  # local, on the hour
    fires: list[UpcomingFire]


@dataclass(frozen=True)
class DayFires:
    day: date
    hours: list[HourFires]


@dataclass(frozen=True)
class UpcomingRuns:
    start: datetime
    end: datetime
    fires: list[UpcomingFire]  # earliest first
    jobs: list[JobFires]  # by name
    # Schedules with more fires in the window than FIRES_PER_SCHEDULE (only those listed).
    capped_schedules: list[BatchSchedule]
    # FIRES_IN_ALL was reached: later schedules' fires are not listed.
    capped_in_all: bool
    # More live schedules fire in the window than SCHEDULES_LIMIT: the later ones are left out.
    capped_schedules_count: bool
    # Schedules whose fires cannot be worked out (stored behind validation's back), and why.
    unreadable: list[tuple[BatchSchedule, str]]


def tag_names(*, limit: int = TAGS_LISTED) -> list[str]:
    return list(JobTag.objects.order_by("name").values_list("name", flat=True)[:limit])


def tag_exists(name: str) -> bool:
    return JobTag.objects.filter(name=name).exists()


def upcoming_runs(
    *, window: timedelta, tag: str | None = None, start: datetime | None = None
) -> UpcomingRuns:
    """The fires of live schedules in (start, start + window], of the jobs tagged `tag` if
    given. One query for the schedules, one for their calendars."""
    start = start or database_now()
    end = start + window
    schedules = BatchSchedule.objects.select_related("job").filter(
        paused=False,
        set_aside_at__isnull=True,
        job__enabled=True,
        next_fire_at__isnull=False,
        next_fire_at__lte=end,
    )
    if tag:
        schedules = schedules.filter(job__tags__name=tag)
    chosen = list(schedules.order_by("next_fire_at", "pk")[: SCHEDULES_LIMIT + 1])
    calendars = schedules_calendars(
        (schedule.pk, schedule.timezone, schedule.calendar_policy)
        for schedule in chosen[:SCHEDULES_LIMIT]
    )
    fires: list[UpcomingFire] = []
    jobs: dict[int, JobFires] = {}
    capped: list[BatchSchedule] = []
    unreadable: list[tuple[BatchSchedule, str]] = []
    capped_in_all = False
    for schedule in chosen[:SCHEDULES_LIMIT]:
        room = min(FIRES_PER_SCHEDULE, FIRES_IN_ALL - len(fires))
        if room <= 0:
            capped_in_all = True
            break
        try:
            # One more than there is room for tells whether any were cut.
            preview = schedule_fires(
                schedule=schedule,
                calendars=calendars.get(schedule.pk),
                count=room + 1,
                after=start,
                until=end,
            )
        except (ValueError, LookupError, OverflowError) as exc:  # a zone or cron beat refuses
            unreadable.append((schedule, str(exc)))
            continue
        if len(preview) > room:
            preview = preview[:room]
            if room == FIRES_PER_SCHEDULE:
                capped.append(schedule)
            else:
                capped_in_all = True
        job = jobs.setdefault(
            schedule.job_id, JobFires(job_id=schedule.job_id, job_name=schedule.job.name)
        )
        job.capped = job.capped or schedule in capped
        for fire in preview:
            upcoming = UpcomingFire(
                at=fire.at,
                schedule=schedule,
                excluded=fire.excluded,
                reason=fire.reason,
                moved_to=fire.moved_to,
            )
            fires.append(upcoming)
            job.fires.append(upcoming)
    fires.sort(key=lambda fire: (fire.at, fire.schedule.job.name, fire.schedule.pk))
    for job in jobs.values():
        job.fires.sort(key=lambda fire: fire.at)
    return UpcomingRuns(
        start=start,
        end=end,
        fires=fires,
        jobs=sorted((job for job in jobs.values() if job.fires), key=lambda job: job.job_name),
        capped_schedules=capped,
        capped_in_all=capped_in_all,
        capped_schedules_count=len(chosen) > SCHEDULES_LIMIT,
        unreadable=unreadable,
    )


def by_day_and_hour(fires: list[UpcomingFire], zone: ZoneInfo) -> list[DayFires]:
    """`fires` (earliest first) grouped by local day, then by local hour, in `zone`."""
    days: dict[date, dict[datetime, list[UpcomingFire]]] = defaultdict(lambda: defaultdict(list))
    for fire in fires:
        local = fire.at.astimezone(zone)
        days[local.date()][local.replace(minute=0, second=0, microsecond=0)].append(fire)
    return [
        DayFires(
            day=day,
            hours=[HourFires(hour=hour, fires=listed) for hour, listed in hours.items()],
        )
        for day, hours in days.items()
    ]
