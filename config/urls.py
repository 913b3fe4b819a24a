from django.contrib import admin
from django.urls import include, path

from batchjobs import metrics, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("demo/ping", views.demo_ping, name="demo-ping"),
    path("admin/", admin.site.urls),
    path("api/", include("batchjobs.api.urls")),
]
