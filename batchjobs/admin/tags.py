"""Job tags: their own list (name, description, how many jobs carry each, linking to those
jobs), searched by the job form's tag picker; and the jobs list's filter by tag
(?tags__name=<name>)."""

from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from batchjobs.models import BatchJob, JobTag

# The filter lists at most this many tags (the most used first): a sidebar, not a catalogue;
# any other tag is reached by clicking it in the list or by ?tags__name=.
FILTER_TAGS_SHOWN = 100


def jobs_with_tag_url(name: str) -> str:
    return f"{reverse('admin:batchjobs_batchjob_changelist')}?{urlencode({'tags__name': name})}"


@admin.register(JobTag)
class JobTagAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "jobs_with_tag")
    search_fields = ("name", "description")
    fields = ("name", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobTag]:
        return super().get_queryset(request).annotate(job_count=Count("jobs"))

    @admin.display(description=_("jobs"), ordering="job_count")
    def jobs_with_tag(self, tag: JobTag) -> str:
        return format_html('<a href="{}">{}</a>', jobs_with_tag_url(tag.name), tag.job_count)  # type: ignore[attr-defined]


class TagFilter(admin.SimpleListFilter):
    """Jobs carrying the tag of this name."""

    title = _("tag")
    parameter_name = "tags__name"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        tags = (
            JobTag.objects.annotate(job_count=Count("jobs"))
            .filter(job_count__gt=0)
            .order_by("-job_count", "name")
            .values_list("name", flat=True)[:FILTER_TAGS_SHOWN]
        )
        names = sorted(tags)
        chosen = self.value()
        if chosen and chosen not in names:  # chosen by a link: shown as chosen all the same
            names.append(chosen)
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[BatchJob]) -> QuerySet[BatchJob]:
        chosen = self.value()
        return queryset.filter(tags__name=chosen) if chosen else queryset
