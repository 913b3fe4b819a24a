from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static


def home(request: HttpRequest) -> HttpResponse:
    return redirect("admin:index")


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on their own (the API's pages, a JSON response): the
    console's icon, which its pages link. Not permanent: the static URL may change."""
    return redirect(static("batchjobs/favicon.svg"))


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
