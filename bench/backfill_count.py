"""How long a backfill takes to count its range (what a dry run or a create waits for), against
the baseline: the count before, which stepped through every fire up to the confirmation bound
(BACKFILL_CONFIRM_FIRES + 1) with next_fire_after. Pure schedule math: no database is touched.

    .venv/bin/python bench/backfill_count.py [--rounds 3] [--skip-baseline]

Per case: the baseline's seconds and count (a floor when it stopped at the bound), ours and the
total (≈ when estimated), and the ratio baseline/ours (how many times faster). The last line is

    RESULT worst_ours_s=<x> min_speedup=<y>
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup()

from batchjobs.rules.bounds import BACKFILL_CONFIRM_FIRES  # noqa: E402
from batchjobs.scheduling.backfill import backfill_fires_counted  # noqa: E402
from batchjobs.scheduling.fire_times import Timing, next_fire_after  # noqa: E402

START = datetime(2000, 1, 1, tzinfo=UTC)
LISTED = 1000  # the fires a dry run lists (services.backfills.DRY_RUN_LISTED)


@dataclass(frozen=True)
class Case:
    name: str
    timing: Timing
    days: int  # the range's length from START


CASES = [
    Case("cron * * * * * Asia/Seoul, 2 years",
         Timing(kind="cron", cron_expression="* * * * *", timezone="Asia/Seoul"), 731),
    Case("interval 1 s, 100 years",
         Timing(kind="interval", interval_every=1, interval_unit="seconds", start_at=START),
         36525),
    Case("cron * * * * * * (per second) UTC, 100 years",
         Timing(kind="cron", cron_expression="* * * * * *"), 36525),
    Case("cron */5 9-17 * * 1-5 Europe/Berlin, 10 years",
         Timing(kind="cron", cron_expression="*/5 9-17 * * 1-5", timezone="Europe/Berlin"),
         3653),
    Case("interval 1 day Europe/Berlin, 100 years",
         Timing(kind="interval", interval_every=1, interval_unit="days", start_at=START,
                timezone="Europe/Berlin"), 36525),
]  # fmt: skip


def baseline_count(timing: Timing, start: datetime, end: datetime) -> int:
    """The count before: every fire stepped through, up to the confirmation bound + 1."""
    count, fire = 0, next_fire_after(timing, start - timedelta(microseconds=1))
    while fire is not None and fire <= end and count < BACKFILL_CONFIRM_FIRES + 1:
        count += 1
        fire = next_fire_after(timing, fire)
    return count


def timed(function, rounds: int):
    best, result = float("inf"), None
    for _ in range(rounds):
        began = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - began)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="best of N for ours (baseline: 1)")
    parser.add_argument("--skip-baseline", action="store_true", help="ours only (fast)")
    args = parser.parse_args()
    header = f"{'case':<48} {'baseline s':>10} {'baseline count':>15} {'ours s':>8} "
    print(header + f"{'ours total':>15} {'speedup':>8}")
    worst, speedups = 0.0, []
    for case in CASES:
        end = START + timedelta(days=case.days)
        ours_s, counted = timed(
            lambda case=case, end=end: backfill_fires_counted(
                case.timing, range_start=START, range_end=end, listed=LISTED
            ),
            args.rounds,
        )
        worst = max(worst, ours_s)
        total = f"≈ {counted.total:,}" if counted.estimated else f"{counted.total:,}"
        if args.skip_baseline:
            print(f"{case.name:<48} {'-':>10} {'-':>15} {ours_s:>8.3f} {total:>15} {'-':>8}")
            continue
        base_s, base = timed(lambda case=case, end=end: baseline_count(case.timing, START, end), 1)
        floor = "> 1,000,000" if base > BACKFILL_CONFIRM_FIRES else f"{base:,}"
        speedups.append(base_s / ours_s)
        print(f"{case.name:<48} {base_s:>10.2f} {floor:>15} {ours_s:>8.3f} {total:>15} "
              f"{base_s / ours_s:>7.0f}x")  # fmt: skip
    speedup = f"{min(speedups):.0f}" if speedups else "-"
    print(f"RESULT worst_ours_s={worst:.3f} min_speedup={speedup}")


if __name__ == "__main__":
    main()
