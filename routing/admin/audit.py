"""The audit history pages: every row says what changed, in words an operator reads.

django-simple-history lists a row for every save, including saves that changed nothing
("Changed" with an empty changes column), and shows an empty foreign key as
"Deleted prompt version (pk=None)". Here a save that changed nothing is left out of the
page and an empty value reads "—".
"""

from typing import Any

from django.contrib.admin import ModelAdmin
from django.core.exceptions import ValidationError
from django.core.paginator import Page
from django.http import Http404, HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin
from simple_history.models import DeletedObject
from simple_history.template_utils import HistoricalRecordContextHelper

EMPTY = "—"


class AuditContextHelper(HistoricalRecordContextHelper):
    def prepare_delta_change_value(self, change: Any, value: Any) -> Any:
        if value is None or (isinstance(value, DeletedObject) and value.pk is None):
            return EMPTY
        return super().prepare_delta_change_value(change, value)


def history_row_is_empty(record: Any) -> bool:
    """A "Changed" row whose diff against the row before it found no change."""
    return record.history_type == "~" and getattr(record, "history_delta_changes", None) == []


class AuditedAdmin(SimpleHistoryAdmin, ModelAdmin):
    """SimpleHistoryAdmin whose history page answers 404, not 500, for an id that is not a key,
    leaves out saves that changed nothing and shows empty values as "—"."""

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        try:
            self.model._meta.pk.to_python(object_id)
        except ValidationError as exc:
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id!r}.") from exc
        return super().history_view(request, object_id, extra_context)

    def get_historical_record_context_helper(self, request: HttpRequest, historical_record: Any) -> Any:
        return AuditContextHelper(self.model, historical_record)

    def set_history_delta_changes(self, request: HttpRequest, historical_records: Any, **kwargs: Any) -> None:
        super().set_history_delta_changes(request, historical_records, **kwargs)
        if isinstance(historical_records, Page):
            historical_records.object_list = [r for r in historical_records if not history_row_is_empty(r)]
