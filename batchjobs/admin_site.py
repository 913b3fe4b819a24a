"""The console's admin site: its home is the dashboard, its menu leads with the product's pages
(in the order an operator uses them), and the models of django-celery-beat and
django-celery-results wait in one "Internals (Celery)" group at the end, still reachable.

INSTALLED_APPS names ConsoleAdminConfig in place of django.contrib.admin, so that admin.site,
and every @admin.register, is this site (Django's "overriding the default admin site"). This
module lives outside batchjobs.admin and imports no model: Django imports it with the settings,
and importing batchjobs.admin registers on admin.site, which would build a second site while
the first is still being built."""

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.translation import gettext_lazy as _

PRODUCT_APP = "batchjobs"
INTERNAL_APPS = ("django_celery_beat", "django_celery_results")
INTERNALS_LABEL = "internals"

# The product's pages in menu order, by model name, with the name the menu gives them; a page
# of its own (no model) is named by its URL name. Models not listed follow, by name.
PRODUCT_MENU: tuple[tuple[str, Any], ...] = (
    ("dashboard", _("Dashboard")),
    ("batchjob", _("Jobs")),
    ("batchschedule", _("Schedules")),
    ("batchlog", _("Executions")),
    ("upcoming", _("Upcoming runs")),
    ("jobtag", _("Tags")),
    ("calendar", _("Calendars")),
    ("scheduleoccurrence", _("Occurrences")),
    ("jobdependency", _("Dependencies")),
    ("backfill", _("Backfills")),
    ("runlimit", _("Run limits")),
    ("notificationsent", _("Notifications")),
    ("auditentry", _("Audit")),
    ("userpreference", _("Preferences")),
)
# A page of its own is listed for whoever may view the model it shows.
PAGES_SHOWING = {"dashboard": "batchlog", "upcoming": "batchschedule"}


def _menu_rank(model_name: str) -> int:
    names = [name for name, _label in PRODUCT_MENU]
    return names.index(model_name) if model_name in names else len(names)


def _mark_current(app_list: list[dict[str, Any]], path_now: str, home: str) -> None:
    """Marks the one entry the page belongs to (the longest URL the path starts with; the home
    only on itself, since every console URL starts with it), and its group."""
    best: tuple[int, dict[str, Any], dict[str, Any]] | None = None
    for app in app_list:
        app["current"] = False
        for model in app["models"]:
            model["current"] = False
            for url in model.get("paths") or [model["admin_url"]]:
                matches = path_now == url if url == home else bool(url) and path_now.startswith(url)
                if matches and (best is None or len(url) > best[0]):
                    best = (len(url), app, model)
    if best is not None:
        best[1]["current"] = best[2]["current"] = True


class ConsoleAdminSite(admin.AdminSite):
    site_header = _("batchjobs")
    site_title = _("batchjobs")
    index_title = _("Dashboard")
    index_template = "admin/batchjobs/dashboard.html"

    def _page_entry(self, name: str, label: Any, url: str, *, paths: list[str]) -> dict[str, Any]:
        return {
            "model": None,
            "name": label,
            "object_name": name.capitalize(),
            "perms": {"view": True},
            "admin_url": url,
            "add_url": None,
            "view_only": True,
            "paths": paths,
        }

    def _product_app(self, app: dict[str, Any]) -> dict[str, Any]:
        by_name = {model["model"]._meta.model_name: model for model in app["models"]}
        menu_names = dict(PRODUCT_MENU)
        home = reverse("admin:index", current_app=self.name)
        for page, shown_model in PAGES_SHOWING.items():
            model = by_name.get(shown_model)
            if model is None or not model["perms"].get("view"):  # view: view or change
                continue
            if page == "dashboard":
                # The dashboard's first address, kept for old links, is the home too.
                url, paths = home, [home, reverse("admin:batchjobs_dashboard")]
            else:
                url = reverse("admin:batchjobs_upcoming", current_app=self.name)
                paths = [url]
            by_name[page] = self._page_entry(page, menu_names[page], url, paths=paths)
        for name, model in by_name.items():
            model["name"] = menu_names.get(name, model["name"])
        models = sorted(by_name.items(), key=lambda item: (_menu_rank(item[0]), item[1]["name"]))
        return {**app, "models": [model for _name, model in models]}

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """The menu (the sidebar, the home's list): the product first, Django's own apps by
        name, then the Celery internals in one group. One app's page (app_label) lists that
        app's models as Django does, the product's in menu order."""
        app_dict = self._build_app_dict(request, app_label)
        for app in app_dict.values():
            app["models"].sort(key=lambda model: model["name"])
        product = app_dict.pop(PRODUCT_APP, None)
        internals = [app_dict.pop(label) for label in INTERNAL_APPS if label in app_dict]
        app_list = sorted(app_dict.values(), key=lambda app: str(app["name"]).lower())
        if product is not None:
            app_list.insert(0, self._product_app(product))
        if app_label is not None:
            app_list.extend(internals)
        elif internals:
            app_list.append(
                {
                    "name": _("Internals (Celery)"),
                    "app_label": INTERNALS_LABEL,
                    "app_url": "",
                    "has_module_perms": True,
                    "internals": True,
                    "models": [model for app in internals for model in app["models"]],
                }
            )
        _mark_current(app_list, request.path, reverse("admin:index", current_app=self.name))
        return app_list

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        # The admin package registers on this site, so it is imported once this site exists.
        from batchjobs.admin.dashboard import home_context

        return super().index(request, {**home_context(request, self), **(extra_context or {})})

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from batchjobs.admin.timeline import upcoming_runs_view

        upcoming = path(
            "batchjobs/upcoming/",
            self.admin_view(upcoming_runs_view),
            name="batchjobs_upcoming",
        )
        return [upcoming, *super().get_urls()]


class ConsoleAdminConfig(AdminConfig):
    default_site = "batchjobs.admin_site.ConsoleAdminSite"
