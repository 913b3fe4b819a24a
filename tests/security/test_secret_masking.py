"""Masking of secret header values where they are shown, and restoring them on save."""

import pytest
from django.core.exceptions import ValidationError

from batchjobs.secrets import SECRET_MASK, headers_masked, headers_unmasked

STORED = [
    {"name": "Authorization", "value": "Bearer one", "secret": True},
    {"name": "X-Api-Key", "value": "key-1", "secret": True},
    {"name": "X-Api-Key", "value": "key-2", "secret": True},
    {"name": "Accept", "value": "application/json", "secret": False},
]


def test_masked_hides_only_secret_values():
    masked = headers_masked(STORED)

    assert [header["value"] for header in masked] == [
        SECRET_MASK,
        SECRET_MASK,
        SECRET_MASK,
        "application/json",
    ]
    assert STORED[0]["value"] == "Bearer one"  # the stored list is not modified


def test_unmasked_restores_by_name_case_insensitively_and_in_order_for_repeats():
    submitted = headers_masked(STORED)
    submitted[0]["name"] = "authorization"

    restored = headers_unmasked(submitted, stored=STORED)

    assert [header["value"] for header in restored] == [
        "Bearer one",
        "key-1",
        "key-2",
        "application/json",
    ]
    assert restored[0]["name"] == "authorization"


def test_unmasked_keeps_values_that_were_retyped():
    submitted = [{"name": "Authorization", "value": "Bearer two", "secret": True}]

    assert headers_unmasked(submitted, stored=STORED) == submitted


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            {"name": "Authorization", "value": SECRET_MASK, "secret": False},
            "keep the header secret",
        ),
        ({"name": "Renamed", "value": SECRET_MASK, "secret": True}, "enter its value"),
    ],
)
def test_unmasked_refuses_a_mask_that_stands_for_no_stored_secret(header, message):
    with pytest.raises(ValidationError) as raised:
        headers_unmasked([header], stored=STORED)

    assert message in raised.value.messages[0]
    assert "Bearer one" not in raised.value.messages[0]


def test_mask_on_a_new_job_is_refused():
    header = {"name": "Authorization", "value": SECRET_MASK, "secret": True}

    with pytest.raises(ValidationError):
        headers_unmasked([header], stored=[])


@pytest.mark.parametrize("malformed", [{"Authorization": "x"}, "text", None])
def test_values_that_are_not_header_lists_pass_through_for_the_service_to_judge(malformed):
    assert headers_masked(malformed) == malformed
    assert headers_unmasked(malformed, stored=STORED) == malformed
