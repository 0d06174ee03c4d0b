"""The pages' forms. They parse input only; the apps' services decide and write."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Stage
from tickets.attachments import ACCEPT, limits_hint
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


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class FilesField(forms.FileField):
    """Any number of files (a phone offers its camera). The form only collects them:
    tickets.attachments checks the size, the count and the type found in the content."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Photos or files")
        kwargs.setdefault("help_text", limits_hint())
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ACCEPT, "multiple": True}))
        super().__init__(**kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        uploads = data if isinstance(data, list | tuple) else [data]
        return [super(FilesField, self).clean(f, initial) for f in uploads if f]


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
    files = FilesField()

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
    files = FilesField()


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
    assignee = forms.ChoiceField(
        label="Assigned to",
        required=False,
        choices=[("", "Anyone"), ("me", "Me"), ("none", "Nobody yet")],
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
    files = FilesField()


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


class TriageForm(forms.Form):
    priority = forms.ChoiceField(label="Priority", choices=Ticket.Priority.choices)
    category = forms.ChoiceField(label="Category", choices=Ticket.Category.choices)
    assignee = forms.TypedChoiceField(
        label="Assigned to", required=False, coerce=int, empty_value=None, choices=[]
    )

    def __init__(self, *args: Any, staff: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Nobody yet")] + [
            (u.pk, str(u) if u.is_active else f"{u} (no longer active)") for u in staff
        ]


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
    supplier = forms.IntegerField(required=False, widget=forms.HiddenInput)
    # Every supplier: asked for explicitly, never inferred from a missing supplier.
    every = forms.BooleanField(required=False, widget=forms.HiddenInput)
    note = forms.CharField(required=False, max_length=300, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("every") == (data.get("supplier") is not None):
            raise forms.ValidationError("Name one supplier, or every supplier.")
        return data


# --- Account managers: trial phases ------------------------------------------------------------
# The models are imported inside the forms: this section was appended to a shared module and
# leaves its imports alone.

EVIDENCE_NEEDED = "An evaluation needs its evidence: what shows it (figures, observations)."


class PlanPhaseForm(forms.Form):
    # One per rendering of the form: a second submit of the same form (a double click, a
    # resent POST) finds the phase the first one planned instead of planning another.
    token = forms.UUIDField(widget=forms.HiddenInput)
    kind = forms.ChoiceField(label="Kind of phase", choices=[])
    start_date = forms.DateField(
        label="Starts", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end_date = forms.DateField(
        label="Ends", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    intent = forms.CharField(
        label="Intent",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the phase is meant to achieve.",
    )
    implementation = forms.CharField(
        label="Implementation",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="How it will be run: who, which classes, what training and support.",
    )
    cohort = forms.ModelMultipleChoiceField(
        label="Cohort", queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )
    criteria = forms.CharField(
        label="Success criteria",
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line: what success looks like, then “|” and its target. For "
        "example: Teachers set homework in the app every week | 4 of 5 teachers by half term",
    )

    def __init__(self, *args: Any, contacts: Any, warn_size: int, **kwargs: Any) -> None:
        from accounts.models import TrialPhase

        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["token"].initial = uuid.uuid4()
        self.fields["kind"].choices = TrialPhase.Kind.choices
        cohort = self.fields["cohort"]
        cohort.queryset = contacts
        cohort.label_from_instance = lambda c: f"{c} ({c.job_title})" if c.job_title else str(c)
        cohort.help_text = (
            f"The school's staff taking part. A pilot works best small: {warn_size} people "
            "or fewer, confident teachers first."
        )

    def clean_criteria(self) -> list[dict[str, str]]:
        from accounts.models import SuccessCriterion

        longest = SuccessCriterion._meta.get_field("description").max_length
        longest_target = SuccessCriterion._meta.get_field("target").max_length
        parsed, problems = [], []
        for number, line in enumerate(self.cleaned_data["criteria"].splitlines(), start=1):
            if not line.strip():
                continue
            description, _, target = (part.strip() for part in line.partition("|"))
            if not description:
                problems.append(f"Line {number}: write what success looks like before the “|”.")
            elif len(description) > longest:
                problems.append(
                    f"Line {number}: the description has {len(description)} characters; "
                    f"keep it to {longest}."
                )
            if "|" in target:
                problems.append(
                    f"Line {number}: one “|” per line, between what success looks like and "
                    "its target."
                )
            elif len(target) > longest_target:
                problems.append(
                    f"Line {number}: the target has {len(target)} characters; keep it to "
                    f"{longest_target}."
                )
            parsed.append({"description": description, "target": target})
        if problems:
            raise ValidationError(problems)
        return parsed

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", "The phase ends before it starts.")
        return data


class EvaluatePhaseForm(forms.Form):
    """Per criterion an evaluation and its evidence (fields ``c<id>_evaluation`` and
    ``c<id>_evidence``), and the phase's impact. Only what changed is sent to the service."""

    impact = forms.CharField(
        label="Impact",
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What changed, with evidence. Replaces the phase's impact.",
    )

    def __init__(self, *args: Any, criteria: list[Any], **kwargs: Any) -> None:
        from accounts.models import SuccessCriterion

        super().__init__(*args, **kwargs)
        self.criteria = criteria
        for c in criteria:
            choices = list(SuccessCriterion.Evaluation.choices)
            if not c.evaluation:  # an evaluation is revised, never withdrawn
                choices.insert(0, ("", "Not evaluated yet"))
            self.fields[f"c{c.pk}_evaluation"] = forms.ChoiceField(
                label="Evaluation", choices=choices, required=bool(c.evaluation)
            )
            self.fields[f"c{c.pk}_evidence"] = forms.CharField(
                label="Evidence",
                required=False,
                max_length=5000,
                widget=forms.Textarea(attrs={"rows": 2}),
            )
            self.initial.setdefault(f"c{c.pk}_evaluation", c.evaluation)
            self.initial.setdefault(f"c{c.pk}_evidence", c.evidence)

    @property
    def rows(self) -> list[tuple[Any, forms.BoundField, forms.BoundField]]:
        return [(c, self[f"c{c.pk}_evaluation"], self[f"c{c.pk}_evidence"]) for c in self.criteria]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for c in self.criteria:
            evaluation, evidence = f"c{c.pk}_evaluation", f"c{c.pk}_evidence"
            if evaluation not in data or evidence not in data:
                continue
            if data[evaluation] and not data[evidence]:
                self.add_error(evidence, EVIDENCE_NEEDED)
            elif data[evidence] and not data[evaluation]:
                self.add_error(
                    evaluation, "Choose how far it was met, or leave the evidence empty."
                )
        return data

    def changes(self, phase: Any) -> tuple[list[dict[str, Any]], str | None]:
        """(criteria whose evaluation or evidence changed, the impact if it changed)."""
        data = self.cleaned_data
        changed = []
        for c in self.criteria:
            evaluation, evidence = data[f"c{c.pk}_evaluation"], data[f"c{c.pk}_evidence"]
            if evaluation and (evaluation, evidence) != (c.evaluation, c.evidence):
                changed.append({"id": c.pk, "evaluation": evaluation, "evidence": evidence})
        impact = data["impact"]
        return changed, (impact if impact != phase.impact else None)


class DecidePhaseForm(forms.Form):
    decision = forms.ChoiceField(label="Decision", choices=[], widget=forms.RadioSelect)
    notes = forms.CharField(
        label="Notes",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why: recorded with the decision and with the stage move it makes.",
    )
    end_date = forms.DateField(
        label="New end date, when extending",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    unmet_criteria_reason = forms.CharField(
        label="Why expand although criteria were not met",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Needed to expand when any criterion is rated not met. The school sees it "
        "with the decision.",
    )

    def __init__(self, *args: Any, expands_to: str = "", **kwargs: Any) -> None:
        from accounts.models import TrialPhase

        super().__init__(*args, **kwargs)
        d = TrialPhase.Decision
        choices = [
            (d.CONTINUE, "Continue: the phase closes and the partnership stays where it is"),
            (d.EXTEND, "Extend: more time, to the new end date below (decide again then)"),
        ]
        if expands_to:  # a whole-school phase has nowhere to expand to
            choices.append(
                (
                    d.EXPAND,
                    f"Expand: the partnership moves to {expands_to.lower()} (every success "
                    "criterion evaluated first)",
                )
            )
        choices.append((d.STOP, "Stop: the phase closes and the partnership ends"))
        self.fields["decision"].choices = choices
