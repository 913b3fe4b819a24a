"""The batch HTTP reader and writer: JSON paths in the one dialect, and errors that name the
URL without its path and query (a token there must not reach a step's error)."""

import socket
import traceback

import pytest
import requests

from batchjobs.batch.job import StepContext
from batchjobs.batch.readers import HttpJsonReader, HttpReadError
from batchjobs.batch.writers import HttpWriteError, HttpWriter

TOKEN = "s3cret-token"


def closed_port() -> int:
    """A local port nothing listens on: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def step_context() -> StepContext:
    return StepContext(params={}, job_context={}, context={}, step_name="post", execution_id=1)


def read_all(reader) -> list:
    reader.open({})
    items = []
    while (item := reader.read()) is not None:
        items.append(item)
    return items


@pytest.mark.parametrize(
    ("items_path", "next_path"),
    [("$.data.items", "$.links.next"), ("data.items", "links.next")],
)
def test_http_json_reader_reads_paths_with_or_without_the_dollar(httpserver, items_path, next_path):
    httpserver.expect_request("/p1").respond_with_json(
        {"data": {"items": [1, 2]}, "links": {"next": "/p2"}}
    )
    httpserver.expect_request("/p2").respond_with_json({"data": {"items": [3]}, "links": {}})

    reader = HttpJsonReader(httpserver.url_for("/p1"), items_path=items_path, next_path=next_path)

    assert read_all(reader) == [1, 2, 3]


def test_http_json_reader_takes_list_positions_in_brackets(httpserver):
    httpserver.expect_request("/pages").respond_with_json({"pages": [{"rows": ["a", "b"]}]})

    reader = HttpJsonReader(httpserver.url_for("/pages"), items_path="$.pages[0].rows")

    assert read_all(reader) == ["a", "b"]


def test_http_json_reader_refuses_an_unreadable_path_when_made():
    with pytest.raises(ValueError, match=r"a list index goes in brackets"):
        HttpJsonReader("https://example.com/items", items_path="pages.0.rows")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (503, "busy", "HTTP 503"),
        (200, "not json", "the body is not JSON"),
        (200, '{"data": {}}', "no list of items at 'data.items'"),
    ],
)
def test_http_json_reader_errors_do_not_show_the_query(httpserver, status, body, message):
    # given a page URL whose query carries a token
    httpserver.expect_request("/items").respond_with_data(body, status=status)
    url = httpserver.url_for(f"/items?token={TOKEN}")

    # when the page cannot be read
    with pytest.raises(HttpReadError) as raised:
        read_all(HttpJsonReader(url, items_path="data.items"))

    # then the error names the host and the failure, not the path or the token
    error = str(raised.value)
    assert message in error
    assert httpserver.url_for("/••••••") in error
    assert TOKEN not in error and "/items" not in error


@pytest.mark.django_db
def test_http_writer_error_does_not_show_the_query(httpserver):
    # given a writer posting to a URL whose query carries a token
    httpserver.expect_request("/sink").respond_with_data("down", status=500)
    writer = HttpWriter(httpserver.url_for(f"/sink?token={TOKEN}"), step=step_context())
    writer.open({})

    # when the service refuses a chunk
    with pytest.raises(HttpWriteError) as raised:
        writer.write([{"id": 1}])

    # then the error names the host, the key and the status, not the path or the token
    error = str(raised.value)
    assert "HTTP 500" in error and "(1:post:1)" in error
    assert httpserver.url_for("/••••••") in error
    assert TOKEN not in error and "/sink" not in error


def test_http_json_reader_connection_error_does_not_show_the_query():
    # given a page URL whose query carries a token, on a port nothing listens on
    url = f"http://127.0.0.1:{closed_port()}/items?token={TOKEN}"

    # when the connection is refused
    with pytest.raises(requests.ConnectionError) as raised:
        read_all(HttpJsonReader(url))

    # then it is still a ConnectionError (for retry policies), and neither its message nor
    # the traceback a failed step records quotes the token
    printed = "".join(traceback.format_exception(raised.value))
    assert "Max retries exceeded" in printed
    assert TOKEN not in printed and "/items" not in printed


@pytest.mark.django_db
def test_http_writer_connection_error_does_not_show_the_query():
    writer = HttpWriter(f"http://127.0.0.1:{closed_port()}/sink?token={TOKEN}", step=step_context())
    writer.open({})

    with pytest.raises(requests.ConnectionError) as raised:
        writer.write([{"id": 1}])

    printed = "".join(traceback.format_exception(raised.value))
    assert "Max retries exceeded" in printed
    assert TOKEN not in printed and "/sink" not in printed
