"""Which parameter values are secrets to mask (an attempt's log lines): those under
secret-looking names, at any depth; none under other names."""

from batchjobs.rules.masking import secret_param_values


def test_values_under_secret_looking_names_at_any_depth():
    params = {
        "password": "hunter2",
        "API-Key": "k-1",
        "client_secret": 12345,
        "auth": {"user": "u", "token": "t-9"},
        "targets": [{"name": "a", "accessToken": "at-1"}],
        "day": "2026-12-03",
        "verbose": True,
    }
    assert set(secret_param_values(params)) == {"hunter2", "k-1", "12345", "u", "t-9", "at-1"}


def test_nothing_secret_in_plain_parameters():
    assert list(secret_param_values({"day": "2026-12-03", "limit": 10, "tags": ["a"]})) == []
    assert list(secret_param_values(None)) == []
    assert list(secret_param_values(["password"])) == []  # a value, not a name
