"""A canary secret appears nowhere but in the outbound request: not in the database, the admin,
the API, the audit trail, the worker's log or the broker's message."""

import json
import uuid

import pytest
from cryptography.fernet import Fernet
from django.core import serializers
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from batchjobs.models import AuditEntry, BatchJob, BatchLog, ExecutionStatus
from batchjobs.secrets import SecretUnreadable, secret_decrypt
from batchjobs.services.jobs import job_save, jobs_secrets_rotate
from tests.support.factories import http_job, start
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def stored_headers_text(job: BatchJob) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT http_headers FROM {BatchJob._meta.db_table} WHERE id = %s", [job.pk]
        )
        (value,) = cursor.fetchone()
    return value if isinstance(value, str) else json.dumps(value)


@pytest.mark.integration
def test_a_canary_secret_only_reaches_the_outbound_request(worker, httpserver, admin_user):
    canary = f"canary-{uuid.uuid4().hex}"
    httpserver.expect_request("/hook").respond_with_data("fine")
    job = http_job(
        httpserver.url_for("/hook"),
        http_headers=[{"name": "Authorization", "value": f"Bearer {canary}", "secret": True},
                      {"name": "X-Team", "value": "ops", "secret": False}],
    )  # fmt: skip
    # at rest: encrypted
    assert canary not in stored_headers_text(job)
    assert "enc:v1:" in stored_headers_text(job)
    # shown: masked in the admin and the API
    browser = APIClient()
    browser.force_login(admin_user)
    page = browser.get(f"/admin/batchjobs/batchjob/{job.pk}/change/").content.decode()
    assert canary not in page and "ops" in page
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    body = api.get(f"/api/v1/jobs/{job.pk}").content.decode()
    assert canary not in body and "Authorization" in body
    # run: the request carries it, nothing else does
    execution = start(job)
    done = wait_until(
        lambda: BatchLog.objects.filter(pk=execution.pk, status=ExecutionStatus.COMPLETED).first()
    )
    request, _ = httpserver.log[-1]
    assert request.headers["Authorization"] == f"Bearer {canary}"
    assert canary not in serializers.serialize("json", [done, *done.attempt_rows.all()])
    assert canary not in serializers.serialize("json", AuditEntry.objects.all())
    assert canary not in worker.log()


def test_rotation_moves_secrets_to_the_new_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.BATCHJOBS_SECRET_KEYS = [old]
    job = http_job("https://example.com/hook",
                   http_headers=[{"name": "X-Key", "value": "s3cret", "secret": True}])  # fmt: skip
    # given a new key in front of the old one
    settings.BATCHJOBS_SECRET_KEYS = [new, old]
    assert jobs_secrets_rotate() == 1
    # then the new key alone reads it, and the old one no longer does
    stored = BatchJob.objects.get(pk=job.pk).http_headers[0]["value"]
    settings.BATCHJOBS_SECRET_KEYS = [new]
    assert secret_decrypt(stored) == "s3cret"
    settings.BATCHJOBS_SECRET_KEYS = [old]
    with pytest.raises(SecretUnreadable):
        secret_decrypt(stored)


def test_a_changed_django_secret_key_keeps_derived_secrets_readable_through_its_fallback(settings):
    # given secrets under the key derived from DJANGO_SECRET_KEY (no BATCHJOBS_SECRET_KEYS)
    settings.BATCHJOBS_SECRET_KEYS, settings.SECRET_KEY = [], "the-old-django-key"
    job = http_job("https://example.com/hook",
                   http_headers=[{"name": "X-Key", "value": "s3cret", "secret": True}])  # fmt: skip
    stored = BatchJob.objects.get(pk=job.pk).http_headers[0]["value"]
    # when the key changes, the old one kept as a fallback, and the secrets are re-encrypted
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-new-django-key", []
    with pytest.raises(SecretUnreadable):  # without the fallback: unreadable
        secret_decrypt(stored)
    settings.SECRET_KEY_FALLBACKS = ["the-old-django-key"]
    assert secret_decrypt(stored) == "s3cret"
    assert jobs_secrets_rotate() == 1
    # then the new key alone reads them
    settings.SECRET_KEY_FALLBACKS = []
    rotated = BatchJob.objects.get(pk=job.pk).http_headers[0]["value"]
    assert secret_decrypt(rotated) == "s3cret"


def test_saving_again_keeps_the_stored_secret(settings):
    job = http_job("https://example.com/hook",
                   http_headers=[{"name": "X-Key", "value": "s3cret", "secret": True}])  # fmt: skip
    stored = BatchJob.objects.get(pk=job.pk)
    stored.description = "edited"
    job_save(job=stored)
    assert secret_decrypt(BatchJob.objects.get(pk=job.pk).http_headers[0]["value"]) == "s3cret"
