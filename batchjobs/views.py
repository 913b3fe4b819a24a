from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods


def home(request: HttpRequest) -> HttpResponse:
    return redirect("admin:index")


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


@csrf_exempt
@require_http_methods(["GET", "POST", "HEAD"])
def demo_ping(request: HttpRequest) -> JsonResponse:
    """The endpoint the quick start's demo HTTP job calls: echoes what batchjobs sent."""
    return JsonResponse(
        {
            "status": "ok",
            "idempotency_key": request.headers.get("Idempotency-Key"),
            "attempt": request.headers.get("X-Batchjobs-Attempt"),
        }
    )
