"""The job form fitted to its kind (issue #16): handlers and batch jobs picked from a list with
their parameter schemas, a batch job's required parameters refused at save, headers as rows
with secrets kept masked, methods as written in a request, one error for bad JSON."""

import json

import pytest
from django.urls import reverse

from batchjobs.batch import JobBuilder, batch_job, tasklet_step
from batchjobs.batch import registry as batch_registry
from batchjobs.handlers.registry import handler_get
from batchjobs.models import BatchJob
from batchjobs.secrets import SECRET_MASK, secret_decrypt
from tests.support.admin_forms import form_errors, job_form_data
from tests.support.factories import handler_job, http_job

pytestmark = pytest.mark.django_db

ADD = reverse("admin:batchjobs_batchjob_add")
LOCAL_URL = "http://127.0.0.1:8000/demo/ping"


def change_url(job: BatchJob) -> str:
    return reverse("admin:batchjobs_batchjob_change", args=[job.pk])


def header_rows(*rows: tuple[str, str, bool], removed: int = 0) -> dict[str, str]:
    """The header rows as the browser posts them; `removed` rows were taken out before these
    (their numbers are skipped, as job_form.js leaves them)."""
    data = {"http_headers-rows": str(removed + len(rows) + 1)}
    for index, (name, value, secret) in enumerate(rows, start=removed):
        data[f"http_headers-{index}-name"] = name
        data[f"http_headers-{index}-value"] = value
        if secret:
            data[f"http_headers-{index}-secret"] = "on"
    blank = removed + len(rows)  # the blank row the page always offers
    data |= {f"http_headers-{blank}-name": "", f"http_headers-{blank}-value": ""}
    return data


def rows_submission(**fields) -> dict[str, str]:
    data = job_form_data(**fields)
    del data["http_headers"]  # the page posts rows, not the JSON box
    return data


# --- handlers and batch jobs picked from a list, with their schemas ---------------------------


def test_handler_and_batch_job_are_picked_from_lists_of_the_registered_names(admin_client):
    response = admin_client.get(ADD)

    form = response.context["adminform"].form
    handler_choices = dict(form.fields["handler_name"].widget.choices)
    batch_choices = dict(form.fields["batch_job_name"].widget.choices)
    assert {"sleep", "noop", "fail"} <= set(handler_choices)
    assert "tests.numbers" in batch_choices
    assert '<select name="handler_name"' in response.content.decode()


def test_the_page_carries_each_handlers_description_and_schema_for_the_parameter_form(
    admin_client,
):
    content = admin_client.get(ADD).content.decode()

    start = content.index('<script id="bj-job-form-data" type="application/json">')
    payload = content[content.index(">", start) + 1 : content.index("</script>", start)]
    catalogue = json.loads(payload)
    sleep = next(entry for entry in catalogue["handler"] if entry["name"] == "sleep")
    assert sleep["schema"] == handler_get("sleep").schema
    assert sleep["description"].startswith("Sleep for the given number of seconds")
    assert any(entry["name"] == "tests.numbers" for entry in catalogue["batch"])
    assert catalogue["text"]["required"] == "Required."
    # The raw schemas of every handler are no longer laid out on the page.
    assert 'id="handler-schemas"' not in content
    assert "batchjobs/job_form.js" in content


def test_a_stored_handler_no_longer_registered_stays_selected_and_is_named(admin_client):
    job = BatchJob.objects.create(name="orphan", kind="handler", handler_name="gone.away")

    form = admin_client.get(change_url(job)).context["adminform"].form

    choices = dict(form.fields["handler_name"].widget.choices)
    assert choices["gone.away"] == "gone.away (not registered)"


# --- a batch job's required parameters --------------------------------------------------------

NEEDS_FILE = "tests.admin.needs_file"


@pytest.fixture
def needs_file():
    """A batch job whose schema requires 'file' (the shape of the CSV import's), registered
    for the test (the registry is process-wide)."""

    @batch_job(
        NEEDS_FILE,
        parameters_schema={
            "type": "object",
            "properties": {"file": {"type": "string"}, "run": {"type": "integer"}},
            "required": ["file"],
        },
    )
    def build():
        """Import a file."""
        return JobBuilder().start(tasklet_step("noop", lambda ctx: None)).build()

    yield NEEDS_FILE
    batch_registry._REGISTRY.remove(NEEDS_FILE)


def test_a_batch_job_saved_without_its_required_parameter_is_refused_naming_it(
    admin_client, needs_file
):
    data = job_form_data(name="import", kind="batch", batch_job_name=needs_file, params="{}")

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    assert form_errors(response)["params"] == ["'file' is a required property"]
    assert not BatchJob.objects.exists()


def test_a_batch_job_with_its_required_parameter_is_saved(admin_client, needs_file):
    data = job_form_data(
        name="import",
        kind="batch",
        batch_job_name=needs_file,
        params='{"file": "/tmp/customers.csv"}',
    )

    response = admin_client.post(ADD, data)

    assert response.status_code == 302, form_errors(response)
    assert BatchJob.objects.get(name="import").params == {"file": "/tmp/customers.csv"}


# --- bad JSON: one error --------------------------------------------------------------------


def test_invalid_json_parameters_are_one_error_naming_the_field(admin_client):
    # Before: the service's rules also judged the stored value ({}), adding "'seconds' is a
    # required property" under the box the operator had filled in.
    data = job_form_data(kind="handler", handler_name="sleep", params='{"seconds": ')

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    assert form_errors(response)["params"] == ["Enter a valid JSON."]
    assert not BatchJob.objects.exists()


# --- HTTP method and headers --------------------------------------------------------------------


def test_methods_are_listed_as_written_in_a_request(admin_client):
    form = admin_client.get(ADD).context["adminform"].form

    assert list(form.fields["http_method"].choices) == [
        ("GET", "GET"), ("POST", "POST"), ("PUT", "PUT"),
        ("PATCH", "PATCH"), ("DELETE", "DELETE"), ("HEAD", "HEAD"),
    ]  # fmt: skip


def test_header_rows_are_saved_as_the_jobs_headers(admin_client):
    data = rows_submission() | header_rows(
        ("Accept", "application/json", False), ("Authorization", "Bearer t0k3n", True)
    )

    response = admin_client.post(ADD, data)

    assert response.status_code == 302, form_errors(response)
    accept, authorization = BatchJob.objects.get().http_headers
    assert accept == {"name": "Accept", "value": "application/json", "secret": False}
    assert (authorization["name"], authorization["secret"]) == ("Authorization", True)
    assert secret_decrypt(authorization["value"]) == "Bearer t0k3n"


def test_header_rows_round_trip_with_the_secret_kept_masked(admin_client):
    # given a job with a secret header, shown masked in its row
    job = http_job(
        LOCAL_URL,
        name="with-secret",
        http_headers=[
            {"name": "Authorization", "value": "Bearer s3cr3t", "secret": True},
            {"name": "Accept", "value": "text/plain", "secret": False},
        ],
    )
    page = admin_client.get(change_url(job)).content.decode()
    assert "s3cr3t" not in page
    assert f'name="http_headers-0-value" value="{SECRET_MASK}"' in page
    assert 'name="http_headers-1-value" value="text/plain"' in page

    # when saved with the mask left, the second row removed and a new row added
    data = rows_submission(name="with-secret") | header_rows(("Authorization", SECRET_MASK, True))
    data |= {"http_headers-rows": "4", "http_headers-3-name": "X-Team",
             "http_headers-3-value": "ops"}  # fmt: skip
    response = admin_client.post(change_url(job), data)

    # then the stored secret is kept, the removed row gone, the new row added
    assert response.status_code == 302, form_errors(response)
    job.refresh_from_db()
    authorization, team = job.http_headers
    assert secret_decrypt(authorization["value"]) == "Bearer s3cr3t"
    assert team == {"name": "X-Team", "value": "ops", "secret": False}


def test_a_secret_typed_into_a_refused_form_is_not_sent_back(admin_client):
    data = rows_submission(http_url="") | header_rows(("X-Key", "typed-s3cret", True))

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    assert "http_url" in form_errors(response)
    content = response.content.decode()
    assert "typed-s3cret" not in content
    assert 'id="id_http_headers-0-name" value="X-Key"' in content  # the row, to type again


def test_a_bad_header_row_is_an_error_of_the_headers_and_saves_nothing(admin_client):
    data = rows_submission() | header_rows(("Bad Name", "x", False))

    response = admin_client.post(ADD, data)

    assert response.status_code == 200
    assert (
        "header 1: 'Bad Name' is not a valid header name" in form_errors(response)["http_headers"]
    )
    assert not BatchJob.objects.exists()


def test_header_rows_past_the_bound_are_not_read(admin_client):
    data = rows_submission() | {"http_headers-rows": "1000000000"}

    response = admin_client.post(ADD, data)

    assert response.status_code == 302, form_errors(response)
    assert BatchJob.objects.get().http_headers == []


# --- the page ---------------------------------------------------------------------------------


def test_retry_on_4xx_is_with_the_http_fields_and_each_help_text_is_its_own(admin_client):
    admin = admin_client.get(ADD).context["adminform"]

    fieldsets = {name: options["fields"] for name, options in admin.fieldsets}
    assert "retry_on_4xx" in fieldsets["HTTP call"]
    assert "retry_jitter" in fieldsets["Retries and policy"]
    assert "handler_parameters" not in str(fieldsets)


def test_the_run_page_carries_the_jobs_schema_and_its_defaults_for_the_parameter_form(
    admin_client,
):
    job = handler_job("sleep", name="sleeper", params={"seconds": 5})

    response = admin_client.get(reverse("admin:batchjobs_batchjob_run", args=[job.pk]))

    catalogue = response.context["parameter_catalogue"]
    assert catalogue["fixed"] == {"kind": "handler", "name": "sleep"}
    assert catalogue["defaults"] == {"seconds": 5}
    assert [entry["name"] for entry in catalogue["handler"]] == ["sleep"]
    assert catalogue["batch"] == []
    assert 'id="bj-job-form-data"' in response.content.decode()
