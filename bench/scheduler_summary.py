"""The summary of bench/scheduler.py: dcb's figures and ours side by side with their ratios
(lag and RSS: lower is better), then issue 3's goals for our scheduler, met or missed."""

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.scheduler_support import BurstResult, LagResult

NAN = float("nan")


def _ratio(ours: float, theirs: float) -> str:
    if not theirs or theirs != theirs or ours != ours:
        return "-"
    return f"{ours / theirs:.3g}"


def _print_side_by_side(rows: dict, line: Callable, ratios: Callable) -> None:
    """`line(name, result)` for dcb's result and ours, then `ratios(ours, dcb)` if both ran."""
    for name in ("dcb", "ours"):
        if name in rows:
            print(line(name, rows[name]))
    if "dcb" in rows and "ours" in rows:
        print(ratios(rows["ours"], rows["dcb"]))


def _burst_line(name: str, r: BurstResult) -> str:
    fired = f"{r.fired}/{r.n}" + (" capped" if r.capped else "")
    return (
        f"{r.n:>7} {name:<9} {fired:>15} {r.fires_per_s:>9.1f} {r.p50_s:>8.3f} "
        f"{r.p99_s:>8.3f} {r.max_s:>8.3f} {r.rss_mb:>7.1f}"
    )


def _burst_ratios(o: BurstResult, t: BurstResult) -> str:
    line = (
        f"{o.n:>7} {'ours/dcb':<9} {_ratio(o.fired, t.fired):>15} "
        f"{_ratio(o.fires_per_s, t.fires_per_s):>9} {_ratio(o.p50_s, t.p50_s):>8} "
        f"{_ratio(o.p99_s, t.p99_s):>8} {_ratio(o.max_s, t.max_s):>8} "
        f"{_ratio(o.rss_mb, t.rss_mb):>7}"
    )
    if t.capped:
        line += f"\n{'':>7} (dcb capped: its lags and rate cover only what fired by the cap)"
    return line


def _lag_line(name: str, r: LagResult) -> str:
    return (
        f"{r.what:>7} {name:<9} p50 {r.p50 * 1000:8.1f} ms  p99 {r.p99 * 1000:8.1f} ms"
        f"  max {r.max * 1000:8.1f} ms"
    )


def _lag_ratios(o: LagResult, t: LagResult) -> str:
    return (
        f"{o.what:>7} {'ours/dcb':<9} p50 {_ratio(o.p50, t.p50):>11}  "
        f"p99 {_ratio(o.p99, t.p99):>11}  max {_ratio(o.max, t.max):>11}"
    )


@dataclass
class Results:
    bursts: list[BurstResult] = field(default_factory=list)
    idle: list[LagResult] = field(default_factory=list)
    edits: list[LagResult] = field(default_factory=list)


def print_summary(results: Results) -> None:
    print("\n== summary: ours / dcb ratios side by side (lag, RSS: lower is better) ==")
    header = (
        f"{'N':>7} {'scheduler':<9} {'fired':>15} {'fires/s':>9} {'p50 s':>8} {'p99 s':>8} "
        f"{'max s':>8} {'RSS MB':>7}"
    )
    print(header)
    for n in sorted({result.n for result in results.bursts}):
        rows = {result.scheduler: result for result in results.bursts if result.n == n}
        _print_side_by_side(rows, _burst_line, _burst_ratios)
    for group in (results.idle, results.edits):
        _print_side_by_side({result.scheduler: result for result in group}, _lag_line, _lag_ratios)
    print("\n== goals (issue 3) ==")
    print_burst_goals({result.n: result for result in results.bursts if result.scheduler == "ours"})
    print_lag_goals(results)


def _met(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def print_burst_goals(ours: dict[int, BurstResult]) -> None:
    """Issue 3's goals for bursts of our scheduler, at the sizes that ran."""
    if 10_000 in ours:
        r = ours[10_000]
        print(f"  10,000 at once, all published, p99 lag <= 2 s: "
              f"{_met(r.fired == r.n and r.p99_s <= 2.0)} "
              f"(fired {r.fired}, p99 {r.p99_s:.2f} s)")  # fmt: skip
    if 100_000 in ours:
        r = ours[100_000]
        print(f"  100,000 at once, all published within 20 s: "
              f"{_met(r.fired == r.n and r.max_s <= 20.0)} "
              f"(fired {r.fired}, last {r.max_s:.2f} s after due)")  # fmt: skip
    if len(ours) > 1:
        low, high = ours[min(ours)], ours[max(ours)]
        print(f"  beat memory flat: peak RSS {low.rss_mb:.1f} MB at {low.n:,}, "
              f"{high.rss_mb:.1f} MB at {high.n:,}")  # fmt: skip


def print_lag_goals(results: Results) -> None:
    """Issue 3's goals for idle fire lag and edit latency of our scheduler."""
    for result in results.idle:
        if result.scheduler == "ours":
            print(f"  idle p99 fire lag <= 50 ms: {_met(result.p99 <= 0.050)} "
                  f"({result.p99 * 1000:.1f} ms)")  # fmt: skip
    for result in results.edits:
        if result.scheduler == "ours":
            values = [value for value in result.values if value == value]
            ok = len(values) == len(result.values) and max(values, default=99) <= 1.0
            print(f"  edits effective <= 1 s (edit -> publish): {_met(ok)} "
                  f"(max {max(values, default=NAN):.3f} s)")  # fmt: skip
