"""The tools around jobs that operators know from Rundeck, Cronicle and Airflow, added to the
jobs admin (BatchJobAdmin derives from JobToolsAdmin): tags (edited on the form, shown and
filtered in the list, added and removed in bulk), clone, export and import in the command
line's format (batchjobs.services.definitions: one piece of code for both), and the job's
history on its page. Every write goes through the services."""

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from batchjobs.errors import InvalidInput, NotFound, PermissionRequired
from batchjobs.models import BatchJob, BatchLog, JobTag
from batchjobs.services.definitions import (
    DOCUMENT_FORMATS,
    ImportResult,
    definitions_export,
    definitions_import,
    document_dump,
    document_format,
    document_load,
)
from batchjobs.services.job_clone import job_clone, job_clone_name
from batchjobs.services.jobs import job_tags_add, job_tags_remove, job_tags_set, tag_names_clean

from .forms import form_add_service_errors
from .job_history import job_history_section
from .tags import FILTER_TAGS_SHOWN, jobs_with_tag_url

# The actions BatchJobAdmin.actions lists beside its own.
JOB_TOOL_ACTIONS = ("add_tag", "remove_tag", "export_yaml", "export_json")
# What an import writes, as the API's import asks it (limits need their own, checked apart).
IMPORT_PERMISSIONS = (
    "batchjobs.add_batchjob", "batchjobs.change_batchjob", "batchjobs.add_batchschedule",
    "batchjobs.change_batchschedule", "batchjobs.delete_batchschedule",
)  # fmt: skip
LIMIT_IMPORT_PERMISSIONS = ("batchjobs.add_runlimit", "batchjobs.change_runlimit")
EXPORT_PERMISSIONS = ("batchjobs.view_batchjob", "batchjobs.view_batchschedule")
# The dry run's page sends the document back with its confirmation as a form field, which
# Django caps at DATA_UPLOAD_MAX_MEMORY_SIZE: the file must leave room for the rest of the form.
IMPORT_FORM_OVERHEAD_BYTES = 16 * 1024
CONTENT_TYPES = {"json": "application/json", "yaml": "application/yaml"}


def import_max_bytes() -> int:
    cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return 10 * 1024 * 1024 if cap is None else max(cap - IMPORT_FORM_OVERHEAD_BYTES, 1024)


class TagActionForm(forms.Form):
    tag = forms.CharField(
        label=_("Tag"),
        max_length=JobTag._meta.get_field("name").max_length,
        help_text=_("A tag's name; a new name creates the tag."),
        widget=forms.TextInput(attrs={"list": "bj-tag-names", "autocomplete": "off"}),
    )

    def clean_tag(self) -> str:
        try:
            return tag_names_clean([self.cleaned_data["tag"]], field="tag")[0]
        except InvalidInput as error:
            raise forms.ValidationError(error.field_errors["tag"]) from error


class CloneForm(forms.Form):
    name = forms.CharField(
        label=_("Name of the copy"),
        max_length=BatchJob._meta.get_field("name").max_length,
        help_text=BatchJob._meta.get_field("name").help_text,
    )


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "A document written by Export or by manage.py batchjobs export (YAML or JSON)."
        ),
    )
    format = forms.ChoiceField(
        label=_("Format"),
        required=False,
        choices=[("", _("From the file's extension")), ("yaml", "YAML"), ("json", "JSON")],
    )


class ImportConfirmForm(forms.Form):
    """The checked document, sent back as it was read, to be imported for good."""

    document = forms.CharField(widget=forms.Textarea(attrs={"hidden": True}), strip=False)
    format = forms.ChoiceField(choices=[(fmt, fmt) for fmt in DOCUMENT_FORMATS])


def _error_rows(errors: dict[str, list[str]], names: list[str]) -> list[tuple[str, str, str]]:
    """(job or entry, field, message) for each of an import's errors, keyed by the service as
    `<job name>.<field>`, `limits[<n>].<field>`, ... or a document-level name."""
    by_length = sorted(names, key=len, reverse=True)
    rows: list[tuple[str, str, str]] = []
    for key, field_messages in errors.items():
        owner, field = "", key
        for name in by_length:  # a job's name may itself hold a dot
            if key.startswith(f"{name}."):
                owner, field = name, key[len(name) + 1 :]
                break
        else:
            head, dot, rest = key.partition(".")
            if dot and head.endswith("]"):
                owner, field = head, rest
        rows.extend((owner, field, message) for message in field_messages)
    return rows


class JobToolsAdmin(admin.ModelAdmin):
    """The jobs admin's tools; BatchJobAdmin lists JOB_TOOL_ACTIONS, "tag_list" and TagFilter."""

    autocomplete_fields = ("tags",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[BatchJob]:
        return super().get_queryset(request).prefetch_related("tags")

    def _job_or_redirect(self, request: HttpRequest, object_id: str) -> BatchJob | HttpResponse:
        """The job of a tool page's URL, or Django's not-found redirect (to the jobs list, with
        a message) for a job that is not there or not visible."""
        job = self.get_object(request, unquote(object_id))
        if job is None:
            # Django's own not-found redirect (ModelAdmin), missing from django-stubs.
            return self._get_obj_does_not_exist_redirect(  # type: ignore[attr-defined]
                request, self.opts, object_id
            )
        return job

    def get_urls(self):
        tools = [
            path("import/", self.admin_site.admin_view(self.import_view),
                 name="batchjobs_batchjob_import"),
            path("export/", self.admin_site.admin_view(self.export_view),
                 name="batchjobs_batchjob_export"),
            path("<path:object_id>/clone/", self.admin_site.admin_view(self.clone_view),
                 name="batchjobs_batchjob_clone"),
        ]  # fmt: skip
        # Before the defaults: their "<path:object_id>/" pattern would swallow them.
        return [*tools, *super().get_urls()]

    # --- tags -----------------------------------------------------------------------------

    @admin.display(description=_("tags"))
    def tag_list(self, job: BatchJob) -> str:
        links = format_html_join(
            " ",
            '<a class="bj-badge bj-badge-info bj-tag" href="{}">{}</a>',
            ((jobs_with_tag_url(tag.name), tag.name) for tag in job.tags.all()),
        )
        return links or "-"

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # The tags through the job service (checked, audited) in place of form.save_m2m(),
        # which would set them unaudited; tags are the job's only many-to-many field.
        if "tags" in form.cleaned_data:
            names = [tag.name for tag in form.cleaned_data["tags"]]
            job_tags_set(job=form.instance, names=names, user=request.user)
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    @admin.action(description=_("Add a tag to the selected jobs…"), permissions=["change"])
    def add_tag(self, request: HttpRequest, queryset: QuerySet[BatchJob]):
        return self._tag_action(request, queryset, adding=True)

    @admin.action(description=_("Remove a tag from the selected jobs…"), permissions=["change"])
    def remove_tag(self, request: HttpRequest, queryset: QuerySet[BatchJob]):
        return self._tag_action(request, queryset, adding=False)

    def _tag_action(
        self, request: HttpRequest, queryset: QuerySet[BatchJob], *, adding: bool
    ) -> HttpResponse | None:
        """First the page asking for the tag; then, all jobs or none, the tag added or removed."""
        jobs = list(queryset.order_by("name"))
        form = TagActionForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            name = form.cleaned_data["tag"]
            change = job_tags_add if adding else job_tags_remove
            try:
                with transaction.atomic():
                    for job in jobs:
                        try:
                            change(job=job, names=[name], user=request.user)
                        except InvalidInput as error:
                            refused = gettext("Job %(name)s: %(error)s")
                            raise InvalidInput(
                                {"tag": refused % {"name": repr(job.name), "error": error}}
                            ) from error
            except InvalidInput as error:
                form_add_service_errors(form, error)
            else:
                if adding:
                    done = ngettext(
                        "Tag %(tag)s added to %(count)d job.",
                        "Tag %(tag)s added to %(count)d jobs.",
                        len(jobs),
                    )
                else:
                    done = ngettext(
                        "Tag %(tag)s removed from %(count)d job.",
                        "Tag %(tag)s removed from %(count)d jobs.",
                        len(jobs),
                    )
                self.message_user(request, done % {"tag": repr(name), "count": len(jobs)})
                return None  # back to the list
        title = gettext("Add a tag") if adding else gettext("Remove a tag")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "jobs": jobs,
            "form": form,
            "action": "add_tag" if adding else "remove_tag",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "tag_names": JobTag.objects.values_list("name", flat=True)[:FILTER_TAGS_SHOWN],
        }
        return TemplateResponse(request, "admin/batchjobs/batchjob/tag_jobs.html", context)

    # --- export ---------------------------------------------------------------------------

    @admin.action(description=_("Export the selected jobs (YAML)"), permissions=["view"])
    def export_yaml(self, request: HttpRequest, queryset: QuerySet[BatchJob]):
        return self._export(request, list(queryset.values_list("name", flat=True)), "yaml")

    @admin.action(description=_("Export the selected jobs (JSON)"), permissions=["view"])
    def export_json(self, request: HttpRequest, queryset: QuerySet[BatchJob]):
        return self._export(request, list(queryset.values_list("name", flat=True)), "json")

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """GET ?format=yaml|json[&job=<name>...]: every job (or those named) as a download."""
        fmt = request.GET.get("format", "yaml")
        if fmt not in DOCUMENT_FORMATS:
            return HttpResponseBadRequest(
                gettext("format: choose one of %(formats)s.")
                % {"formats": ", ".join(DOCUMENT_FORMATS)},
                content_type="text/plain; charset=utf-8",
            )
        return self._export(request, request.GET.getlist("job") or None, fmt)

    def _export(self, request: HttpRequest, names: list[str] | None, fmt: str) -> HttpResponse:
        """The document the command line's export writes (secret values masked, as the API's
        export does; the limits for a user who may view them)."""
        if not request.user.has_perms(EXPORT_PERMISSIONS):
            raise PermissionDenied
        try:
            document = definitions_export(
                names=names, include_limits=request.user.has_perm("batchjobs.view_runlimit")
            )
        except NotFound as error:
            return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
        response = HttpResponse(
            document_dump(document, fmt), content_type=f"{CONTENT_TYPES[fmt]}; charset=utf-8"
        )
        stamp = f"{timezone.localtime():%Y%m%d-%H%M%S}"
        response["Content-Disposition"] = f'attachment; filename="batchjobs-{stamp}.{fmt}"'
        return response

    # --- import ---------------------------------------------------------------------------

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a document; its dry run is shown (per job: created, updated with the fields
        that change, unchanged; or every error by job and field); then confirm to import it."""
        if not request.user.has_perms(IMPORT_PERMISSIONS):
            raise PermissionDenied
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Import jobs"),
            "max_bytes": import_max_bytes(),
        }
        upload = ImportForm()
        if request.method == "POST" and "confirm" in request.POST:
            confirm = ImportConfirmForm(request.POST)
            if confirm.is_valid():
                text, fmt = confirm.cleaned_data["document"], confirm.cleaned_data["format"]
                outcome = self._import(request, text, fmt, dry_run=False, context=context)
                if outcome is not None:
                    self.message_user(request, _import_summary(outcome), messages.SUCCESS)
                    return HttpResponseRedirect(reverse("admin:batchjobs_batchjob_changelist"))
        elif request.method == "POST":
            upload = ImportForm(request.POST, request.FILES)
            if upload.is_valid():
                text = self._uploaded_text(upload)
                if text is not None:
                    fmt = upload.cleaned_data["format"] or document_format(
                        upload.cleaned_data["file"].name, None
                    )
                    self._import(request, text, fmt, dry_run=True, context=context)
        context["upload"] = upload
        return TemplateResponse(request, "admin/batchjobs/batchjob/import.html", context)

    def _uploaded_text(self, form: ImportForm) -> str | None:
        upload = form.cleaned_data["file"]
        limit = import_max_bytes()
        if upload.size > limit:
            form.add_error(
                "file",
                gettext(
                    "The file has %(size)s bytes; the console imports up to %(limit)s "
                    "(larger documents: manage.py batchjobs import)."
                )
                % {"size": upload.size, "limit": limit},
            )
            return None
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            form.add_error("file", gettext("The file is not UTF-8 text."))
            return None

    def _import(
        self, request: HttpRequest, text: str, fmt: str, *, dry_run: bool, context: dict
    ) -> ImportResult | None:
        """Import (or try) the document, filling in what the page shows; None if refused."""
        names: list[str] = []
        try:
            document = document_load(text, fmt)
            if isinstance(document, dict) and isinstance(document.get("jobs"), list):
                names = [
                    entry["name"]
                    for entry in document["jobs"]
                    if isinstance(entry, dict) and isinstance(entry.get("name"), str)
                ]
            if isinstance(document, dict) and document.get("limits"):
                if not request.user.has_perms(LIMIT_IMPORT_PERMISSIONS):
                    raise InvalidInput(
                        {
                            "limits": gettext(
                                "Importing run limits needs the permissions to add and change them."
                            )
                        }  # fmt: skip
                    )
            result = definitions_import(document=document, user=request.user, dry_run=dry_run)
        except InvalidInput as error:
            context["errors"] = _error_rows(error.field_errors, names)
            return None
        except PermissionRequired as error:  # e.g. a job of the sql handler
            context["errors"] = _error_rows({error.field: [str(error)]}, names)
            return None
        context["result"] = result
        context["summary"] = _import_summary(result)
        context["confirm"] = ImportConfirmForm(initial={"document": text, "format": fmt})
        return result

    # --- clone ----------------------------------------------------------------------------

    def clone_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Ask the copy's name, then copy the job and open the copy's page."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        job = self._job_or_redirect(request, object_id)
        if isinstance(job, HttpResponse):
            return job
        if not self.has_view_or_change_permission(request, job):
            raise PermissionDenied
        if request.method == "POST":
            form = CloneForm(request.POST)
            if form.is_valid():
                try:
                    cloned = job_clone(job=job, name=form.cleaned_data["name"], user=request.user)
                except InvalidInput as error:
                    form_add_service_errors(form, error)
                except PermissionRequired as error:  # e.g. a job of the sql handler
                    form.add_error(None, str(error))
                else:
                    self.message_user(request, _clone_summary(job, cloned), messages.SUCCESS)
                    return HttpResponseRedirect(
                        reverse("admin:batchjobs_batchjob_change", args=[cloned.job.pk])
                    )
        else:
            form = CloneForm(initial={"name": job_clone_name(job=job)})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Clone %(name)s") % {"name": job.name},
            "original": job,
            "form": form,
            "schedule_count": job.schedules.count(),
        }
        return TemplateResponse(request, "admin/batchjobs/batchjob/clone.html", context)

    # --- history --------------------------------------------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: BatchJob | None = None,
    ) -> HttpResponse:
        if obj is not None and self.admin_site.get_model_admin(BatchLog).has_view_permission(
            request
        ):
            context["job_history"] = job_history_section(job=obj)
        context["can_clone"] = obj is not None and self.has_add_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)


def _import_summary(result: ImportResult) -> str:
    text = gettext(
        "Jobs: %(jobs_created)s created, %(jobs_updated)s updated; schedules: "
        "%(schedules_created)s created, %(schedules_updated)s updated, %(schedules_deleted)s "
        "deleted; limits: %(limits_created)s created, %(limits_updated)s updated; calendars: "
        "%(calendars_created)s created, %(calendars_updated)s updated."
    ) % vars(result)
    if result.dry_run:
        return gettext("Dry run, nothing changed yet: %(summary)s") % {"summary": text}
    return text


def _clone_summary(original: BatchJob, cloned) -> str:
    text = gettext(
        "Job %(original)s cloned as %(clone)s, disabled, with %(copied)s schedules copied "
        "paused. Check it, enable it and resume its schedules when it is ready."
    ) % {
        "original": repr(original.name),
        "clone": repr(cloned.job.name),
        "copied": cloned.schedules_copied,
    }
    if cloned.schedules_left_out:
        text += " " + ngettext(
            "%(count)d one-off schedule whose time has passed was left out.",
            "%(count)d one-off schedules whose time has passed were left out.",
            cloned.schedules_left_out,
        ) % {"count": cloned.schedules_left_out}
    return text
