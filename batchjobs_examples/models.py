"""Tables the sample handlers work on: customers in `default`, their replica in `warehouse`.

The tables keep the names they had when these models belonged to the batchjobs app, so that an
installation made before the examples had an app of their own keeps its rows (see
migrations/0001_initial.py)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ExampleCustomer(models.Model):
    """A customer in the operational database (alias `default`)."""

    email = models.EmailField(unique=True, help_text=_("The customer's unique e-mail address."))
    name = models.CharField(max_length=200, help_text=_("The customer's display name."))
    active = models.BooleanField(default=True, help_text=_("Whether the customer is active."))
    updated_at = models.DateTimeField(auto_now=True, help_text=_("When the row last changed."))
    synced_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the warehouse last received this row.")
    )

    class Meta:
        db_table = "batchjobs_examplecustomer"
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class WarehouseCustomer(models.Model):
    """The warehouse's copy of a customer (alias `warehouse`, routed by WarehouseRouter)."""

    email = models.EmailField(unique=True, help_text=_("The customer's unique e-mail address."))
    name = models.CharField(max_length=200, help_text=_("The customer's display name."))
    active = models.BooleanField(default=True, help_text=_("Whether the customer is active."))
    source_updated_at = models.DateTimeField(
        help_text=_("The source row's updated_at when it was copied.")
    )

    class Meta:
        db_table = "batchjobs_warehousecustomer"
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class TutorialCustomer(models.Model):
    """A customer of the tutorial handlers (handlers.py), on whichever database a job names:
    `sqlite`, `postgres` and `mysql` by default, always reached with .using(alias).

    Not managed: those aliases are the operator's databases, which batchjobs never migrates;
    the handlers create this table where it is missing (tutorial.tutorial_database)."""

    email = models.CharField(
        primary_key=True, max_length=254, help_text=_("The customer's unique e-mail address.")
    )
    name = models.CharField(max_length=200, help_text=_("The customer's display name."))
    active = models.BooleanField(default=True, help_text=_("Whether the customer is active."))
    version = models.PositiveIntegerField(
        default=1, help_text=_("Raised by every change; a copy carries the version it copied.")
    )
    synced_version = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("The version last copied to the next database.")
    )

    class Meta:
        managed = False
        db_table = "examples_tutorial_customer"
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email
