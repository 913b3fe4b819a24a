"""Fire-time templates: the grammar, the filters, the errors, and that nothing typed runs."""

import string
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchjobs.rules.template import (
    FILTERS,
    VARIABLES,
    TemplateError,
    header_escape,
    template_parse,
    template_render,
    url_escape,
    url_skeleton,
    url_template_parse,
    url_template_skeleton,
)

VARS = {
    "scheduled_for": datetime(2027, 1, 3, 15, 0, tzinfo=UTC),
    "logical_time": datetime(2027, 1, 3, 15, 0, tzinfo=UTC),
    "data_interval_start": datetime(2027, 1, 2, 15, 0, tzinfo=UTC),
    "data_interval_end": datetime(2027, 1, 3, 15, 0, tzinfo=UTC),
    "execution_id": 42,
    "attempt": 2,
    "job_name": "nightly export",
    "params": {"region": "eu/west", "limits": {"rows": 100}, "flag": True, "none": None},
}


def render(text, **escape):
    return template_render(template_parse(text), VARS, **escape)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text, no braces }} {", "plain text, no braces }} {"),
        ("{{ logical_time }}", "2027-01-03T15:00:00+00:00"),
        ("{{logical_time|date}}", "2027-01-03T15:00:00+00:00"),
        ('{{ data_interval_start | date:"%Y-%m-%d" }}', "2027-01-02"),
        ('{{ logical_time | tz:"Asia/Seoul" }}', "2027-01-04T00:00:00+09:00"),
        ('{{ logical_time | tz:"Asia/Seoul" | date:"%Y%m%d %H:%M %Z" }}', "20270104 00:00 KST"),
        ('{{ logical_time | tz:"America/New_York" | date:"%H %z" }}', "10 -0500"),
        ("{{ execution_id }}/{{ attempt }}", "42/2"),
        ("{{ job_name | upper }}", "NIGHTLY EXPORT"),
        ("{{ job_name | urlencode }}", "nightly%20export"),
        ("{{ params.region | urlencode }}", "eu%2Fwest"),
        ("{{ params.limits.rows }}", "100"),
        ("{{ params.limits }}", '{"rows": 100}'),
        ("{{ params.flag }}", "true"),
        ("{{ job_name | json }}", '"nightly export"'),
        ("{{ logical_time | json }}", '"2027-01-03T15:00:00+00:00"'),
        ('{{ params.missing | default:"all" | upper }}', "ALL"),
        ('{{ params.none | default:"n/a" }}', "n/a"),
        ('{{ params.missing | upper | default:"x" }}', "x"),
        ('{{ params.region | default:"x" }}', "eu/west"),
        ('{{ job_name | default:"say \\"hi\\"" }}', "nightly export"),
        ('{{ params.none | default:"say \\"hi\\" \\\\" }}', 'say "hi" \\'),
        ('{{ params.region | date:"%Y" | default:"x" }}', None),  # an error: not a date
    ],
)
def test_render(text, expected):
    if expected is None:
        with pytest.raises(TemplateError, match="needs a date and time"):
            render(text)
    else:
        assert render(text) == expected


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("a {{ nope }}", "unknown variable 'nope'", 6),
        ("{{ logical_time | shout }}", "unknown filter 'shout'", 19),
        ('{{ logical_time | tz:"Mars/Olympus" }}', "unknown time zone 'Mars/Olympus'", 19),
        ('{{ logical_time | date:"%Y-%Q" }}', "'%Q' is not a date format directive", 19),
        ('{{ logical_time | date:"100%" }}', "'%' is not a date format directive", 19),
        ("x {{ logical_time ", "{{ is not closed by }}", 3),
        ('{{ logical_time | date:"%Y }}', "the quoted argument is not closed", 24),
        ("{{ logical_time | tz }}", "needs an argument", 19),
        ('{{ job_name | upper:"x" }}', "takes no argument", 15),
        ("{{ params }}", "name a parameter", 4),
        ("{{ params. }}", "expected a parameter name", 11),
        ("{{ }}", "expected a variable name", 4),
        ("{{ job_name job_name }}", "unexpected 'job_name '", 13),
        ("{{ job_name | }}", "expected a filter name", 15),
        ("{{ job_name.__class__ }}", "unexpected '.__class__ '", 12),
        ("{{ job_name | date:x }}", 'expected a "quoted" argument', 20),
    ],
)
def test_errors_say_what_and_where(text, message, position):
    with pytest.raises(TemplateError) as caught:
        template_parse(text)
    assert message in str(caught.value)
    assert f"(at character {position})" in str(caught.value)


def test_a_value_the_run_lacks_is_an_error_unless_defaulted():
    with pytest.raises(TemplateError, match=r"params\.day has no value in this run"):
        render("{{ params.day }}")
    with pytest.raises(TemplateError, match="scheduled_for has no value"):
        template_render(template_parse("{{ scheduled_for }}"), {**VARS, "scheduled_for": None})


def test_url_values_are_percent_encoded_whole_and_urlencode_is_not_doubled():
    url = (
        "https://api.example.com/r/{{ params.region }}"
        "?t={{ logical_time }}&n={{ job_name | urlencode }}"
    )
    rendered = template_render(url_template_parse(url), VARS, escape=url_escape)
    assert rendered == (
        "https://api.example.com/r/eu%2Fwest?t=2027-01-03T15%3A00%3A00%2B00%3A00&n=nightly%20export"
    )


def test_header_values_stay_on_one_line():
    template = template_parse("Bearer {{ params.token }}")
    with pytest.raises(TemplateError, match="new line"):
        template_render(template, {"params": {"token": "x\r\nX-Evil: 1"}}, escape=header_escape)


@pytest.mark.parametrize(
    "url",
    [
        "https://{{ params.host }}/x",
        "https://api.example.com{{ params.suffix }}/x",
        "https://api.example.com:{{ params.port }}/x",
        "{{ params.url }}",
        "https://user{{ params.at }}/x",
    ],
)
def test_the_scheme_and_host_must_be_literal(url):
    with pytest.raises(TemplateError, match="scheme and host must be written out"):
        url_template_parse(url)
    assert url_skeleton(url) == url  # the host checks then see the URL as written


def test_url_skeleton_keeps_the_literal_host():
    template = url_template_parse("https://api.example.com:8443/{{ job_name }}?d={{ attempt }}")
    assert url_template_skeleton(template) == "https://api.example.com:8443/x?d=x"


def test_variables_and_filters_are_the_documented_ones():
    assert set(VARIABLES) == {
        "scheduled_for", "logical_time", "data_interval_start", "data_interval_end",
        "execution_id", "attempt", "job_name",
    }  # fmt: skip
    assert set(FILTERS) == {"date", "tz", "urlencode", "json", "default", "upper", "lower"}
    assert template_parse("{{ params.a }}{{ logical_time }}").variables == {
        "params",
        "logical_time",
    }


# --- nothing a user types does anything but render or raise TemplateError -------------------

pieces = st.sampled_from(
    ["{{", "}}", "|", ":", '"', "\\", ".", " ", "params", "logical_time", "date", "tz",
     "default", "json", "urlencode", "%Y", "%", "__class__", "{", "}", "Asia/Seoul", "x"]
)  # fmt: skip
typed = st.lists(st.one_of(pieces, st.text(string.printable, max_size=3)), max_size=25).map("".join)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
    | st.datetimes(timezones=st.just(UTC)),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(text=typed, params=st.dictionaries(st.sampled_from(["a", "x", "b"]), values, max_size=3))
def test_any_text_parses_or_fails_with_a_template_error_and_so_does_rendering(text, params):
    for parse in (template_parse, url_template_parse):
        try:
            template = parse(text)
        except TemplateError:
            continue
        for escape in (url_escape, header_escape, str):
            try:
                template_render(template, {**VARS, "params": params}, escape=escape)
            except TemplateError:
                pass
