"""The API's description: the OpenAPI schema and Swagger UI over it."""

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ..permissions import SchemaAccess
from .base import ChallengeView


class SchemaView(ChallengeView, SpectacularAPIView):
    """The OpenAPI 3 schema; public unless BATCHJOBS_API_SCHEMA_PUBLIC is off."""

    permission_classes = (SchemaAccess,)


class DocsView(ChallengeView, SpectacularSwaggerView):
    """Swagger UI over the schema; public unless BATCHJOBS_API_SCHEMA_PUBLIC is off."""

    permission_classes = (SchemaAccess,)
    url_name = "api:schema"
