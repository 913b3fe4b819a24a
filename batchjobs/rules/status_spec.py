"""Which HTTP statuses count as success: an HTTP job's expected status, such as '200-299,304'."""

from django.utils.translation import gettext


def status_spec_parse(spec: str) -> list[tuple[int, int]]:
    """'200-299,304' -> [(200, 299), (304, 304)]; ValueError with a readable reason."""
    ranges = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            raise ValueError(gettext("empty entry; use e.g. '200-299' or '200,204'"))
        low_text, _, high_text = part.partition("-")
        if not low_text.strip().isdigit() or (high_text and not high_text.strip().isdigit()):
            raise ValueError(
                gettext("%(part)s is not a status code or a range of them") % {"part": repr(part)}
            )
        low, high = int(low_text), int(high_text or low_text)
        if not (100 <= low <= high <= 599):
            raise ValueError(
                gettext("%(part)s must lie within 100-599, low to high") % {"part": repr(part)}
            )
        ranges.append((low, high))
    return ranges


def status_in_spec(status: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether `status` lies in one of the ranges status_spec_parse returned."""
    return any(low <= status <= high for low, high in ranges)
