"""The paginated JSON API reader, through the hardened HTTP client."""

import json
import time
from collections.abc import Mapping
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests
from django.utils.translation import gettext

from batchjobs.http.client import http_call, request_error_masked
from batchjobs.rules.json_path import json_path_parse, json_path_value
from batchjobs.rules.masking import url_masked

from ..policies import RetryPolicy

NO_RETRY = RetryPolicy()


class HttpReadError(Exception):
    """A page could not be read: an error status, a body that is not the JSON expected."""


def _with_query(url: str, **params: Any) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


class HttpJsonReader:
    """Reads the items of a paginated JSON API through the hardened HTTP client (SSRF checks on
    every request, a deadline, a size cap), restartably by page.

    url: the first page.
    items_path: where the page's list of items is in the body, a JSON path (batchjobs.rules.
        json_path: "$.data.items", or the shorthand "data.items"); "" or "$" when the body is
        the list. A path that cannot be read is refused when the reader is made.
    Pagination, one of:
    - page_param="page": pages are numbered from `first_page` in that query parameter; the
      last page is an empty one, or one shorter than `page_size` when that is given.
    - next_path="$.links.next" (a JSON path too): the body holds the next page's URL
      (relative URLs are resolved against the page's); the last page has none (absent, null
      or "").
    - neither: a single page.
    page_size, size_param: send page_size in the query parameter size_param ("per_page").
    headers: sent with every request (authorisation...).
    retry: a RetryPolicy for fetching a page (e.g. on HttpReadError and
        requests.ConnectionError); by default a failed fetch fails the read.

    read() returns the next item, or None after the last page. The URL of the page being read
    and the count of its items already returned are saved; a restart fetches that page again
    and skips those items. The API must serve the same pages again for that to be exact (a
    stable sort; a cursor or page number, not a moving window over changing data).
    """

    def __init__(
        self,
        url: str,
        *,
        items_path: str = "",
        page_param: str | None = None,
        first_page: int = 1,
        next_path: str | None = None,
        page_size: int | None = None,
        size_param: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float = 30.0,
        retry: RetryPolicy = NO_RETRY,
        name: str = "http",
    ) -> None:
        if page_param and next_path:
            raise ValueError("paginate by page_param or by next_path, not both")
        if size_param and not page_size:
            raise ValueError("size_param needs a page_size to send")
        self.items_path, self.page_param, self.next_path = items_path, page_param, next_path
        self._items_at = json_path_parse(items_path)
        self._next_at = json_path_parse(next_path) if next_path else None
        self.first_page, self.page_size, self.size_param = first_page, page_size, size_param
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.timeout_seconds, self.retry = timeout_seconds, retry
        self._url_state, self._index_state = f"{name}.page_url", f"{name}.index"
        self._first_url = self._page_url(url, first_page)
        self._url: str | None = self._first_url
        self._items: list = []
        self._index = 0
        self._next: str | None = None
        self._fetched = False

    def _page_url(self, url: str, page: int | None) -> str:
        params: dict[str, Any] = {}
        if self.page_param and page is not None:
            params[self.page_param] = page
        if self.size_param:
            params[self.size_param] = self.page_size
        return _with_query(url, **params) if params else url

    def open(self, context: dict) -> None:
        self._url = context.get(self._url_state, self._first_url)
        self._index = context.get(self._index_state, 0)
        self._fetched, self._items, self._next = False, [], None

    def update(self, context: dict) -> None:
        context[self._url_state] = self._url
        context[self._index_state] = self._index

    def close(self) -> None:
        self._items = []

    def read(self) -> Any | None:
        while True:
            url = self._url
            if url is None:
                return None
            if not self._fetched:
                self.retry.call(partial(self._fetch, url))
            if self._index < len(self._items):
                item = self._items[self._index]
                self._index += 1
                return item
            self._url, self._index, self._fetched = self._next, 0, False

    def _fetch(self, url: str) -> None:
        try:
            response = http_call(
                method="GET", url=url, headers=self.headers, body=None,
                deadline=time.monotonic() + self.timeout_seconds,
            )  # fmt: skip
        except requests.RequestException as error:
            raise request_error_masked(error, url=url) from None
        shown = url_masked(url)  # a token in the page's query string stays out of errors
        if not 200 <= response.status < 300:
            raise HttpReadError(
                gettext("GET %(url)s: HTTP %(status)s: %(body)s")
                % {"url": shown, "status": response.status, "body": response.text()[:200]}
            )
        try:
            body = json.loads(response.body)
        except ValueError as error:
            raise HttpReadError(
                gettext("GET %(url)s: the body is not JSON: %(error)s")
                % {"url": shown, "error": error}
            ) from None
        items = json_path_value(body, self._items_at)
        if not isinstance(items, list):
            raise HttpReadError(
                gettext("GET %(url)s: no list of items at %(path)s")
                % {"url": shown, "path": repr(self.items_path)}
            )
        self._items, self._fetched = items, True
        self._next = self._following(url, body, items)

    def _following(self, url: str, body: Any, items: list) -> str | None:
        if self._next_at is not None:
            link = json_path_value(body, self._next_at)
            return urljoin(url, link) if isinstance(link, str) and link else None
        if self.page_param:
            if not items or (self.page_size and len(items) < self.page_size):
                return None
            current = dict(parse_qsl(urlsplit(url).query))[self.page_param]
            return self._page_url(url, int(current) + 1)
        return None
