"""The pages' forms. They parse input only; the apps' services decide and write."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Stage
from tickets.models import Status, Ticket
from visits.models import Visit


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """A service's ValidationError shown on the form: on its field where the form has that
    field, otherwise above the form."""
    if hasattr(exc, "error_dict"):
        for name, messages in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(None, exc.messages)


# --- Teachers --------------------------------------------------------------------------------


class PartnershipChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        products = " and ".join(p.name for p in obj.products.all())
        return f"{products} ({obj.supplier.name})" if products else obj.supplier.name


class FeedbackForm(forms.Form):
    """Filing in under a minute: what it's about, and what happened. The hidden token makes
    a double submit (or a resubmitted page) file the ticket once."""

    token = forms.UUIDField(widget=forms.HiddenInput)
    partnership = PartnershipChoiceField(
        queryset=None, label="Which product is it about?", empty_label="Choose…"
    )
    subject = forms.CharField(
        label="In a few words",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text="For example: Homework won't load on the class iPads",
    )
    description = forms.CharField(
        label="What happened, or what would help?",
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    category = forms.ChoiceField(
        label="What kind of feedback is it?",
        required=False,
        choices=[("", "Not sure"), *Ticket.Category.choices],
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, partnerships: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["partnership"].queryset = partnerships
        choices = list(partnerships)
        self.single = len(choices) == 1
        self.single_label = ""
        if self.single:
            field = self.fields["partnership"]
            field.widget = forms.HiddenInput()
            field.initial = choices[0].pk
            self.single_label = field.label_from_instance(choices[0])
        if not self.is_bound:
            self.fields["token"].initial = uuid.uuid4()


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        label="Your rating",
        choices=[
            (5, "5 – very well"),
            (4, "4 – well"),
            (3, "3 – OK"),
            (2, "2 – poorly"),
            (1, "1 – very poorly"),
        ],
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(
        label="Anything to add?",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class SchoolReplyForm(forms.Form):
    body = forms.CharField(
        label="Reply to the supplier", max_length=20_000, widget=forms.Textarea(attrs={"rows": 3})
    )


# --- Account managers: the ticket queue ------------------------------------------------------


class QueueFilterForm(forms.Form):
    STATUS = [("open", "Open (any)"), *Status.choices, ("", "Any status")]
    status = forms.ChoiceField(label="Status", choices=STATUS, required=False, initial="open")
    partnership = forms.TypedChoiceField(
        label="School", required=False, coerce=int, empty_value=None, choices=[]
    )
    priority = forms.ChoiceField(
        label="Priority", required=False, choices=[("", "Any"), *Ticket.Priority.choices]
    )
    category = forms.ChoiceField(
        label="Category", required=False, choices=[("", "Any"), *Ticket.Category.choices]
    )
    breached = forms.BooleanField(label="Late only", required=False)
    q = forms.CharField(
        label="Words",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"type": "search"}),
    )

    def __init__(self, *args: Any, partnerships: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["partnership"].choices = [("", "All schools")] + [
            (p.pk, p.school.name) for p in partnerships
        ]


class ReplyForm(forms.Form):
    body = forms.CharField(
        label="Message", max_length=20_000, widget=forms.Textarea(attrs={"rows": 4})
    )
    visibility = forms.ChoiceField(
        label="Who sees it",
        choices=[
            ("public", "Reply to the school (the teacher is emailed)"),
            ("internal", "Internal note (your team only)"),
        ],
        initial="public",
        widget=forms.RadioSelect,
    )


class MoveForm(forms.Form):
    status = forms.ChoiceField(label="Move to")
    outcome = forms.ChoiceField(
        label="Outcome (when resolving)",
        required=False,
        choices=[("", "—"), *Ticket.Outcome.choices],
    )
    outcome_reason = forms.CharField(
        label="What was done, or why it won't change",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The school sees this with the outcome.",
    )

    def __init__(self, *args: Any, allowed: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [(s, Status(s).label) for s in allowed]


# --- Account managers: partnerships, visits, nudges --------------------------------------------


class StageForm(forms.Form):
    to_stage = forms.ChoiceField(label="Move to stage")
    reason = forms.CharField(
        label="Reason",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded with the move. Passing the pilot gate without a ready technical "
        "survey needs a supplier admin and a reason.",
    )
    override = forms.BooleanField(label="Override the technical review gate", required=False)

    def __init__(self, *args: Any, allowed: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_stage"].choices = [(s, Stage(s).label) for s in allowed]


class PlanVisitForm(forms.Form):
    partnership = forms.ModelChoiceField(queryset=None, label="School", empty_label="Choose…")
    kind = forms.ChoiceField(label="Kind of visit", choices=Visit.Kind.choices)
    day = forms.DateField(
        label="Day", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    starts = forms.TimeField(
        label="Starts", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    ends = forms.TimeField(
        label="Ends", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    agenda = forms.CharField(
        label="Agenda", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    attend = forms.BooleanField(label="I will be there", required=False, initial=True)

    def __init__(self, *args: Any, partnerships: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["partnership"]
        field.queryset = partnerships
        field.label_from_instance = lambda p: p.school.name


class CompleteVisitForm(forms.Form):
    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 2}))
    record_time = forms.BooleanField(
        label="Record the visit's length as on-site time", required=False, initial=True
    )


class CancelVisitForm(forms.Form):
    reason = forms.CharField(label="Why (the school lead sees it)", max_length=500)
    no_show = forms.BooleanField(label="It was a no-show", required=False)


class TemplatePreviewForm(forms.Form):
    template = forms.ModelChoiceField(queryset=None, label="Template", empty_label="Choose…")
    recipient = forms.ChoiceField(label="For", choices=[])

    def __init__(
        self, *args: Any, templates: Any, recipients: list[tuple[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates
        self.fields["recipient"].choices = [("", "Choose…"), *recipients]


# --- School leads: staff contact controls ----------------------------------------------------


class StopForm(forms.Form):
    contact = forms.IntegerField(widget=forms.HiddenInput)
    # Empty: every supplier (the member of staff hears from none of them).
    supplier = forms.IntegerField(required=False, widget=forms.HiddenInput)
    note = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)
