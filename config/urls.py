from django.contrib import admin
from django.urls import path

from batchjobs import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("demo/ping", views.demo_ping, name="demo-ping"),
    path("admin/", admin.site.urls),
]
