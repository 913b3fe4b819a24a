"""The operator's own preferences: the time zone the console shows times in.

One page, at the model's list address (the index and the header link there), that edits the
signed-in operator's row, or adds it: every staff user may set their own, and nobody sees or
changes another's."""

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.translation import gettext as _

from batchjobs.models import UserPreference
from batchjobs.services.preferences import preference_set

from .forms import UserPreferenceForm


@admin.register(UserPreference)
class UserPreferenceAdmin(admin.ModelAdmin):
    form = UserPreferenceForm
    fields = ("time_zone",)

    def get_urls(self):
        mine = path(
            "",
            self.admin_site.admin_view(self.mine_view),
            name="batchjobs_userpreference_changelist",
        )
        return [mine]

    def mine_view(self, request: HttpRequest) -> HttpResponse:
        own = self.get_queryset(request).first()
        return self.changeform_view(
            request,
            object_id=None if own is None else str(own.pk),
            extra_context={
                "title": _("Your preferences"),
                "show_save_and_add_another": False,
                "show_save_and_continue": False,
                "show_delete_link": False,
            },
        )

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).filter(user_id=request.user.pk)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, str | list[str]]:
        return {"time_zone": settings.BATCHJOBS_TIME_ZONE}

    # Every staff user's own row, and only that (admin_view has checked staff already).
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._own(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._own(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def _own(self, request: HttpRequest, obj: UserPreference | None) -> bool:
        return self.has_module_permission(request) and (
            obj is None or obj.user_id == request.user.pk
        )

    def save_model(self, request: HttpRequest, obj: UserPreference, form, change: bool) -> None:
        saved = preference_set(user=request.user, time_zone=obj.time_zone)
        obj.pk, obj.user = saved.pk, saved.user

    def response_add(self, request: HttpRequest, obj: UserPreference, post_url_continue=None):
        return self._saved(request, obj)

    def response_change(self, request: HttpRequest, obj: UserPreference):
        return self._saved(request, obj)

    def _saved(self, request: HttpRequest, obj: UserPreference) -> HttpResponse:
        self.message_user(request, _("Times are now shown in %(zone)s.") % {"zone": obj.time_zone})
        return HttpResponseRedirect(reverse("admin:batchjobs_userpreference_changelist"))
