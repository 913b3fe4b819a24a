from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods


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
