"""What every API view shares: JSON in, model permissions, errors mapped once, a 401 with a
`Token` challenge for the anonymous, and the helpers between a request and a service.

Views are typed against DRF's GenericAPIView: ApiView is one, and a view adds DRF's concrete
generic (ListCreateAPIView, ...) after it. Reads go through batchjobs.selectors, writes through
batchjobs.services (the JobOperator for start/stop/restart/abandon); errors become HTTP answers in
batchjobs.api.errors, once.
"""

from collections.abc import Mapping, Sequence
from typing import Any, cast

from django.db.models import Model
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import generics, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.filters import BaseFilterBackend
from rest_framework.metadata import SimpleMetadata
from rest_framework.pagination import BasePagination, LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from batchjobs.errors import InvalidInput, NotFound
from batchjobs.services.definition_serializers import StrictSerializer

from ..parsers import BoundedJSONParser
from ..permissions import HasRequiredPermissions
from ..schema import ApiAutoSchema

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 255

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=gettext_lazy(
        "The same key (per job) returns the same execution instead of starting another."
    ),
)


class Pagination(LimitOffsetPagination):
    max_limit = 1000


class ApiMetadata(SimpleMetadata):
    """OPTIONS answers: the request fields only where a view has a serializer for them; the
    schema at /api/schema/ documents every operation in full."""

    def determine_actions(self, request: Request, view: APIView) -> dict[str, Any]:
        if getattr(view, "serializer_class", None) is None:
            return {}
        return super().determine_actions(request, view)


class ChallengeView(APIView):
    """Answer an anonymous caller 401 with a `Token` challenge: DRF answers 403 when the first
    authenticator in settings (SessionAuthentication) has no challenge to offer."""

    def get_authenticate_header(self, request: Request) -> str:
        return TokenAuthentication.keyword  # what its authenticate_header answers


class ApiView(ChallengeView, generics.GenericAPIView[Any]):
    """An API operation: JSON in, model permissions, and no filters unless a list asks."""

    permission_classes = (HasRequiredPermissions,)
    parser_classes = (BoundedJSONParser,)
    metadata_class = ApiMetadata
    filter_backends: Sequence[type[BaseFilterBackend]] = ()
    pagination_class: type[BasePagination] | None = None
    required_permissions: Mapping[str, tuple[str, ...]] = {}
    # For the schema: when the operation answers 409 (and 404 without an id in its path).
    conflict: str | Promise = ""  # a lazy translation: the schema is in the reader's language
    not_found: str | Promise = ""
    schema = ApiAutoSchema()

    def get_object(self) -> Any:
        try:
            return super().get_object()
        except Http404 as exc:
            model: type[Model] = self.get_queryset().model
            raise NotFound(
                _("no %(object)s %(id)s")
                % {"object": model._meta.verbose_name, "id": self.kwargs.get("pk")}
            ) from exc


class ApiListView(ApiView):
    """A list: the settings' filters and ordering, and pages of at most 1000."""

    # api_settings imports the dotted paths of the settings: classes, whatever the stubs say.
    filter_backends = cast(Sequence[type[BaseFilterBackend]], api_settings.DEFAULT_FILTER_BACKENDS)
    pagination_class = Pagination


def valid(
    serializer_class: type[serializers.BaseSerializer[Any]], data: Any, **kwargs: Any
) -> dict[str, Any]:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def no_body(request: Request) -> None:
    """Operations without a body refuse one that carries fields (as every body refuses
    unknown fields)."""
    valid(StrictSerializer, request.data if request.data is not None else {})


def idempotency_key(request: Request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise InvalidInput(
            {
                IDEMPOTENCY_HEADER: _("At most %(count)s printable characters.")
                % {"count": IDEMPOTENCY_KEY_MAX}
            }
        )
    return key


@csrf_exempt  # it changes nothing, so a POST gets the same 404 (not a CSRF page)
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under /api/: a JSON 404 like every other API error, not an HTML page."""
    return JsonResponse(
        {"detail": _("No API endpoint at %(path)s.") % {"path": request.path}, "code": "not_found"},
        status=404,
    )
