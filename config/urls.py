from django.apps import apps
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from batchjobs import metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("batchjobs.api.urls")),
    # The console's language selector posts here (Django's set_language).
    path("i18n/", include("django.conf.urls.i18n")),
    # The tutorial's pages, for the people who know them: redirects to the product's (not
    # permanent, so that browsers do not cache them for good).
    *(
        re_path(
            rf"^{old}/?$",
            RedirectView.as_view(pattern_name=new, permanent=False, query_string=True),
            name=f"tutorial-{old}",
        )
        for old, new in [
            ("docs", "api:docs"),
            ("crons", "admin:batchjobs_batchschedule_changelist"),
            ("jobs", "admin:batchjobs_batchjob_changelist"),
        ]
    ),
]

# The demo endpoint the quick start's HTTP job calls exists only where the examples are installed
# (BATCHJOBS_EXAMPLES).
if apps.is_installed("batchjobs_examples"):
    urlpatterns.append(path("", include("batchjobs_examples.urls")))
