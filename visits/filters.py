import django_filters as df

from .models import FollowUpAction, TimeEntry, Visit


class VisitFilter(df.FilterSet):
    partnership = df.NumberFilter(field_name="partnership_id")
    school = df.NumberFilter(field_name="school_id")
    supplier = df.NumberFilter(field_name="supplier_id")
    kind = df.MultipleChoiceFilter(choices=Visit.Kind.choices, distinct=False)
    status = df.MultipleChoiceFilter(choices=Visit.Status.choices, distinct=False)
    starts_after = df.IsoDateTimeFilter(field_name="starts_at", lookup_expr="gte")
    starts_before = df.IsoDateTimeFilter(field_name="starts_at", lookup_expr="lt")
    person = df.NumberFilter(field_name="attendees__id", distinct=True, label="Attendee (user id)")

    class Meta:
        model = Visit
        fields = ["partnership", "school", "supplier", "kind", "status"]


class FollowUpActionFilter(df.FilterSet):
    visit = df.NumberFilter(field_name="assessment__visit_id")
    partnership = df.NumberFilter(field_name="assessment__visit__partnership_id")
    owner = df.ChoiceFilter(choices=FollowUpAction.Owner.choices)
    is_done = df.BooleanFilter(field_name="done_at", lookup_expr="isnull", exclude=True)
    due_before = df.DateFilter(field_name="due_on", lookup_expr="lt")

    class Meta:
        model = FollowUpAction
        fields = ["visit", "partnership", "owner"]


class TimeEntryFilter(df.FilterSet):
    partnership = df.NumberFilter(field_name="partnership_id")
    school = df.NumberFilter(field_name="school_id")
    supplier = df.NumberFilter(field_name="supplier_id")
    visit = df.NumberFilter(field_name="visit_id")
    ticket = df.NumberFilter(field_name="ticket_id")
    person = df.NumberFilter(field_name="user_id")
    mode = df.ChoiceFilter(choices=TimeEntry.Mode.choices)
    activity = df.MultipleChoiceFilter(choices=TimeEntry.Activity.choices, distinct=False)
    date_from = df.DateFilter(field_name="date", lookup_expr="gte")
    date_to = df.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = TimeEntry
        fields = ["partnership", "school", "supplier", "mode"]
