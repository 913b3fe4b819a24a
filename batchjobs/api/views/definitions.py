"""Jobs as code over the API: export jobs with their schedules and the run limits as one
document, import one (all or nothing). The same service as `manage.py batchjobs export/import`
(batchjobs.services.definitions), so a document is read the same way by both."""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from batchjobs.errors import PermissionRequired
from batchjobs.services.definitions import definitions_export, definitions_import

from .. import serializers as s
from ..permissions import (
    ADD_JOB,
    ADD_LIMIT,
    ADD_SCHEDULE,
    CHANGE_JOB,
    CHANGE_LIMIT,
    CHANGE_SCHEDULE,
    DELETE_SCHEDULE,
    VIEW_JOB,
    VIEW_LIMIT,
    VIEW_SCHEDULE,
)
from .base import ApiView, valid


class Definitions(ApiView):
    """GET: the jobs (all, or those named) with their schedules, secret header values masked,
    and the run limits (all, or those of the named jobs' queues and hosts) for a user who may
    view them. POST: create or update the document's limits by scope and name, its jobs by
    name and their schedules by position, all in one transaction; a bad field is a 400 naming
    it as `limits[<n>].<field>`, `<job name>.<field>` or `<job name>.schedules[<n>].<field>`,
    and then nothing changed. A document with limits needs the permissions to add and change
    them too."""

    required_permissions = {
        "GET": (VIEW_JOB, VIEW_SCHEDULE),
        "POST": (ADD_JOB, CHANGE_JOB, ADD_SCHEDULE, CHANGE_SCHEDULE, DELETE_SCHEDULE),
    }
    not_found = gettext_lazy("a job named in ?job= does not exist.")

    @extend_schema(
        summary="Export jobs, their schedules and the run limits",
        parameters=[s.DefinitionsExportQuerySerializer],
        responses={200: s.DefinitionsDocumentSerializer},
    )
    def get(self, request: Request) -> Response:
        names = valid(s.DefinitionsExportQuerySerializer, request.query_params).get("job")
        # Secrets stay masked here: in clear only from the command line, on the server.
        return Response(
            definitions_export(
                names=names or None, include_limits=request.user.has_perm(VIEW_LIMIT)
            )
        )

    @extend_schema(
        summary="Import jobs, their schedules and run limits",
        parameters=[s.DefinitionsImportQuerySerializer],
        request=s.DefinitionsDocumentSerializer,
        responses={200: s.DefinitionsImportResultSerializer},
    )
    def post(self, request: Request) -> Response:
        dry_run = valid(s.DefinitionsImportQuerySerializer, request.query_params)["dry_run"]
        if isinstance(request.data, dict) and request.data.get("limits"):
            for permission in (ADD_LIMIT, CHANGE_LIMIT):
                if not request.user.has_perm(permission):
                    raise PermissionRequired(
                        _("Importing limits needs the permission %(permission)s.")
                        % {"permission": permission},
                        field="limits",
                        permission=permission,
                    )
        result = definitions_import(document=request.data, user=request.user, dry_run=dry_run)
        return Response(s.DefinitionsImportResultSerializer(result).data)
