from django.apps import apps
from django.contrib import admin
from django.urls import include, path

from batchjobs import metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("batchjobs.api.urls")),
    # The console's language selector posts here (Django's set_language).
    path("i18n/", include("django.conf.urls.i18n")),
]

# The demo endpoint the quick start's HTTP job calls exists only where the examples are installed
# (BATCHJOBS_EXAMPLES).
if apps.is_installed("batchjobs_examples"):
    urlpatterns.append(path("", include("batchjobs_examples.urls")))
