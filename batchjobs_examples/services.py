"""The tutorial's service layer: functions that own their transaction and their rules, called by
a thin handler (handlers.service_layer) as they could be by a view or a command. They know
nothing of jobs: they raise their own errors, which the handler translates."""

from django.db import transaction
from django.db.models import F

from .tutorial import customers


class CustomersNotFound(LookupError):
    def __init__(self, emails: list[str]) -> None:
        super().__init__(emails)
        self.emails = emails


def customers_deactivate(*, using: str, emails: list[str]) -> int:
    """Deactivate the customers `emails` on the database `using`, each one's version raised (so
    the sync handlers copy the change), in one transaction: an e-mail without a customer raises
    CustomersNotFound and changes nothing. Returns how many were active before."""
    with transaction.atomic(using=using):
        found = customers(using).select_for_update().filter(email__in=emails)
        missing = sorted(set(emails) - set(found.values_list("email", flat=True)))
        if missing:
            raise CustomersNotFound(missing)
        return found.filter(active=True).update(active=False, version=F("version") + 1)
