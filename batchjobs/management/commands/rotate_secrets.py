"""`manage.py rotate_secrets`: re-encrypt stored secrets under the newest key.

Rotation: put the new key first in BATCHJOBS_SECRET_KEYS (keep the old one after it), restart,
run this command, then remove the old key.
"""

from django.core.management.base import BaseCommand

from batchjobs.services.jobs import jobs_secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the first key of BATCHJOBS_SECRET_KEYS."

    def handle(self, *args, **options) -> None:
        rotated = jobs_secrets_rotate()
        self.stdout.write(f"re-encrypted the secrets of {rotated} job(s)")
