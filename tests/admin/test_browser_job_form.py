"""The job form in a real browser (Debian's Chromium, Playwright): a handler picked from the
list shows its description and a parameter form generated from its schema, which refuses a
missing required parameter before the page is sent and saves what is typed; switching the kind
hides the other kinds' fields; headers are rows added, removed and kept secret. Screenshots at
1400 and 390 px go to test-artifacts/; any console error or server error fails the test."""

import pytest
from playwright.sync_api import expect

from batchjobs.models import BatchJob
from batchjobs.secrets import SECRET_MASK, secret_decrypt
from tests.support.browser import ARTIFACTS

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_handler_is_picked_from_a_list_and_its_parameters_typed_in_a_form(logged_in):
    page, base = logged_in

    # --- a handler job: the HTTP fields go, the handler's list and parameters come ---------
    page.goto(f"{base}/admin/batchjobs/batchjob/add/")
    page.fill("#id_name", "purge-old-runs")
    expect(page.locator("fieldset.kind-http")).to_be_hidden()  # no kind chosen yet
    page.select_option("#id_kind", "handler")
    expect(page.locator("fieldset.kind-http")).to_be_hidden()
    expect(page.locator("fieldset.kind-batch:not(.kind-handler)")).to_be_hidden()
    page.select_option("#id_handler_name", "purge_logs")
    expect(page.locator("#bj-param-description")).to_contain_text(
        "Delete finished executions (and their attempts and steps)"
    )
    days, batch_size = (
        page.locator("#id_params__older_than_days"),
        page.locator("#id_params__batch_size"),
    )
    expect(days).to_be_visible()
    expect(page.locator(".field-params__older_than_days label")).to_have_class("required")
    expect(page.locator("#id_params")).to_be_hidden()  # the JSON box, behind the form

    # --- sent without the form's own check (form.submit() skips it), the server refuses it,
    # and its error shows at the field it names --------------------------------------------
    page.evaluate("document.getElementById('batchjob_form').submit()")
    expect(page.locator(".field-params__older_than_days .errorlist")).to_contain_text(
        "'older_than_days' is a required property"
    )
    expect(page.locator("#id_handler_name")).to_have_value("purge_logs")
    assert not BatchJob.objects.exists()
    days, batch_size = (
        page.locator("#id_params__older_than_days"),
        page.locator("#id_params__batch_size"),
    )

    # --- the required parameter left empty: refused before the page is sent ---------------
    page.click("input[name=_continue]")
    expect(page.locator(".field-params__older_than_days .errorlist")).to_contain_text("Required.")
    assert not BatchJob.objects.exists()

    # --- out of bounds, then right: saved as typed ------------------------------------------
    days.fill("0")
    batch_size.fill("2.5")
    page.click("input[name=_continue]")
    expect(page.locator(".field-params__older_than_days .errorlist")).to_contain_text(
        "Must be more than 0."
    )
    expect(page.locator(".field-params__batch_size .errorlist")).to_contain_text(
        "Enter a whole number."
    )
    days.fill("30")
    batch_size.fill("500")
    page.screenshot(path=ARTIFACTS / "job-form-handler.png", full_page=True)
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    job = BatchJob.objects.get(name="purge-old-runs")
    assert job.params == {"older_than_days": 30, "batch_size": 500}

    # --- its run page: the same form, the job's parameters the defaults a run goes over ----
    page.goto(f"{base}/admin/batchjobs/batchjob/{job.pk}/run/")
    run_days = page.locator("#id_params__older_than_days")
    expect(run_days).to_have_value("")
    expect(page.locator(".field-params__older_than_days")).to_contain_text("Default: 30")
    expect(page.locator(".field-params__older_than_days label")).not_to_have_class("required")
    page.fill("#id_params__batch_size", "many")
    page.click("input[type=submit]")
    expect(page.locator(".field-params__batch_size .errorlist")).to_contain_text("Enter a number.")
    assert not job.executions.exists()
    page.fill("#id_params__batch_size", "100")
    page.click("input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Queued execution")
    assert job.executions.get().params == {"older_than_days": 30, "batch_size": 100}
    page.goto(f"{base}/admin/batchjobs/batchjob/{job.pk}/change/")

    # --- the saved job shows its parameters in the form; another handler keeps what fits ---
    expect(page.locator("#id_params__older_than_days")).to_have_value("30")
    page.select_option("#id_handler_name", "noop")
    expect(page.locator("#bj-param-form")).to_contain_text("Takes no parameters.")
    page.select_option("#id_handler_name", "sleep")
    expect(page.locator("#id_params__seconds")).to_have_value("")
    assert "older_than_days" not in page.input_value("#id_params")

    # --- at 390 px the handler's list, description and parameters fit the screen ----------
    page.set_viewport_size({"width": 390, "height": 844})
    page.select_option("#id_handler_name", "purge_logs")
    expect(page.locator("#id_params__older_than_days")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "job-form-handler-390.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1


def test_http_headers_are_rows_and_the_kind_switches_the_fields(logged_in):
    page, base = logged_in
    page.goto(f"{base}/admin/batchjobs/batchjob/add/")

    # --- switching the kind shows only that kind's fields -----------------------------------
    page.select_option("#id_kind", "batch")
    expect(page.locator("fieldset.kind-batch:not(.kind-handler)")).to_be_visible()
    expect(page.locator("fieldset.kind-http")).to_be_hidden()
    page.select_option("#id_kind", "http")
    expect(page.locator("fieldset.kind-http")).to_be_visible()
    expect(page.locator("fieldset.kind-batch:not(.kind-handler)")).to_be_hidden()
    expect(page.locator("fieldset.kind-handler:not(.kind-batch)")).to_be_hidden()
    methods = page.locator("#id_http_method option").all_inner_texts()
    assert methods[:3] == ["GET", "POST", "PUT"]

    # --- headers: two rows added, one removed, one kept secret -------------------------------
    page.fill("#id_name", "ping-with-key")
    # A long URL, as real ones are: the list must still show the status column.
    page.fill(
        "#id_http_url",
        f"{base}/demo/ping?report=nightly-customer-export&format=csv&region=eu-west-1&page_size=5000",
    )
    rows = page.locator(".bj-header-rows .bj-header-row:not(.bj-header-titles)")
    expect(rows).to_have_count(1)  # the blank row a new job starts with
    rows.nth(0).locator(".bj-header-name").fill("Accept")
    rows.nth(0).locator(".bj-header-value").fill("text/plain")
    page.click(".bj-header-add")
    page.click(".bj-header-add")
    expect(rows).to_have_count(3)
    rows.nth(1).locator(".bj-header-name").fill("X-Dropped")
    rows.nth(2).locator(".bj-header-name").fill("X-Key")
    rows.nth(2).locator(".bj-header-secret input").check()
    expect(rows.nth(2).locator(".bj-header-value")).to_have_attribute("type", "password")
    rows.nth(2).locator(".bj-header-value").fill("k3y-value")
    rows.nth(1).locator(".bj-header-remove").click()
    expect(rows).to_have_count(2)
    page.screenshot(path=ARTIFACTS / "job-form-headers.png", full_page=True)
    page.locator("fieldset.kind-http").screenshot(path=ARTIFACTS / "job-form-http-fields.png")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    accept, key = BatchJob.objects.get(name="ping-with-key").http_headers
    assert accept == {"name": "Accept", "value": "text/plain", "secret": False}
    assert (key["name"], key["secret"]) == ("X-Key", True)
    assert secret_decrypt(key["value"]) == "k3y-value"

    # --- shown again: the secret masked; saved unchanged, it is kept ------------------------
    assert "k3y-value" not in page.content()
    expect(rows.nth(1).locator(".bj-header-value")).to_have_value(SECRET_MASK)
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    key = BatchJob.objects.get(name="ping-with-key").http_headers[1]
    assert secret_decrypt(key["value"]) == "k3y-value"

    # --- the jobs list at 1400 px shows the status of the last run ---------------------------
    page.goto(f"{base}/admin/batchjobs/batchjob/")
    page.click("#toggle-nav-sidebar")  # the navigation sidebar open, as a first visit has it
    expect(page.locator("#nav-sidebar")).to_be_visible()
    status_column = page.locator("#result_list th.column-last_execution")
    expect(status_column).to_be_visible()
    shown = page.locator(".results").bounding_box()
    column = status_column.bounding_box()
    page.screenshot(path=ARTIFACTS / "job-list.png", full_page=True)
    assert column["x"] + column["width"] <= shown["x"] + shown["width"], (column, shown)
    page.click("#toggle-nav-sidebar")
    page.go_back()

    # --- at 390 px the rows fit the screen ----------------------------------------------------
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(rows).to_have_count(3)  # the two headers and a blank row
    width = page.evaluate("document.documentElement.scrollWidth")
    row_right = page.evaluate(
        "Math.max(...[...document.querySelectorAll('.bj-header-row')]"
        ".map((row) => row.getBoundingClientRect().right))"
    )
    assert row_right <= 390, row_right
    page.screenshot(path=ARTIFACTS / "job-form-390.png", full_page=True)
    page.locator(".field-http_headers").screenshot(path=ARTIFACTS / "job-form-headers-390.png")
    assert width <= 390 + 1, width
