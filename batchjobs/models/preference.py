"""What each operator chooses for themselves in the console."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class UserPreference(models.Model):
    """One operator's console preferences; an operator without a row sees the deployment's
    defaults (BATCHJOBS_TIME_ZONE)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="batchjobs_preference",
        verbose_name=_("user"),
        help_text=_("The operator these preferences are for."),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        help_text=_(
            "The IANA time zone the console shows times in for this operator, e.g. Asia/Seoul."
        ),
    )
    updated_at = models.DateTimeField(
        _("updated at"), auto_now=True, help_text=_("When the preferences were last changed.")
    )

    class Meta:
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")
        constraints = [
            models.CheckConstraint(
                condition=~Q(time_zone=""), name="user_preference_time_zone_set"
            ),
        ]

    def __str__(self) -> str:
        return str(_("Preferences of %(user)s") % {"user": self.user})
