"""The examples' URLs, included by config/urls.py only when the app is installed."""

from django.urls import path

from . import views

urlpatterns = [
    path("demo/ping", views.demo_ping, name="demo-ping"),
]
