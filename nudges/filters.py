import django_filters as df

from .models import Nudge, NudgeRule, OptOut


class NudgeFilter(df.FilterSet):
    status = df.MultipleChoiceFilter(choices=Nudge.Status.choices, distinct=False)
    partnership = df.NumberFilter(field_name="partnership_id")
    school = df.NumberFilter(field_name="school_id")
    supplier = df.NumberFilter(field_name="supplier_id")
    contact = df.NumberFilter(field_name="contact_id")
    rule = df.NumberFilter(field_name="rule_id")
    delivery = df.ChoiceFilter(choices=Nudge.Delivery.choices)
    due_after = df.IsoDateTimeFilter(field_name="due_at", lookup_expr="gte")
    due_before = df.IsoDateTimeFilter(field_name="due_at", lookup_expr="lt")

    class Meta:
        model = Nudge
        fields = ["status", "partnership", "school", "supplier", "contact", "rule"]


class NudgeRuleFilter(df.FilterSet):
    partnership = df.NumberFilter(field_name="partnership_id")
    trigger = df.ChoiceFilter(choices=NudgeRule.Trigger.choices)
    is_active = df.BooleanFilter()

    class Meta:
        model = NudgeRule
        fields = ["partnership", "trigger", "is_active"]


class OptOutFilter(df.FilterSet):
    contact = df.NumberFilter(field_name="contact_id")
    supplier = df.NumberFilter(field_name="supplier_id")
    school = df.NumberFilter(field_name="contact__school_id")
    source = df.ChoiceFilter(choices=OptOut.Source.choices)

    class Meta:
        model = OptOut
        fields = ["contact", "supplier", "school", "source"]
