"""One ``visible_to(user)`` per model (see accounts/scoping.py)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from accounts.scoping import scope_for


class TicketQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> TicketQuerySet:
        """Supplier staff: their supplier's tickets. School and trust leads: their schools'
        tickets. Teachers: the tickets they raised. (Indexed: supplier, school, raiser.)"""
        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        q = Q(supplier_id__in=s.supplier_ids) | Q(school_id__in=s.all_school_ids)
        if s.school_ids:
            q |= Q(raised_by_id=s.user_id, school_id__in=s.school_ids)
        return self.filter(q)

    def with_attachments(self, user: Any) -> TicketQuerySet:
        """The files given with each ticket as it was raised, as ``ticket.own_attachments``
        (a message's files are its own: TicketMessageQuerySet.with_attachments)."""
        from .models import TicketAttachment

        files = TicketAttachment.objects.visible_to(user).filter(message__isnull=True)
        return self.prefetch_related(
            models.Prefetch("attachments", queryset=files, to_attr="own_attachments")
        )

    def open(self) -> TicketQuerySet:
        from .models import OPEN_STATUSES  # the models module imports this one

        return self.filter(status__in=OPEN_STATUSES)


class TicketMessageQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> TicketMessageQuerySet:
        """Messages of visible tickets; internal ones only to the ticket's supplier staff."""
        from .models import Ticket

        s = scope_for(user)
        if s.user_id is None:
            return self.none()
        tickets = Ticket.objects.visible_to(user).values("id")
        public_or_own = Q(is_internal=False) | Q(ticket__supplier_id__in=s.supplier_ids)
        return self.filter(public_or_own, ticket_id__in=tickets)

    def with_attachments(self, user: Any) -> TicketMessageQuerySet:
        """Each message's files as ``message.attachments.all()``, in one query."""
        from .models import TicketAttachment

        files = TicketAttachment.objects.visible_to(user)
        return self.prefetch_related(models.Prefetch("attachments", queryset=files))


class TicketAttachmentQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> TicketAttachmentQuerySet:
        """Files of visible tickets: those attached to the ticket when it was raised, and
        those of the messages the user may see (TicketMessage's rule: a file on an internal
        note is the supplier's, like the note)."""
        from .models import Ticket, TicketMessage

        if scope_for(user).user_id is None:
            return self.none()
        tickets = Ticket.objects.visible_to(user).values("id")
        messages = TicketMessage.objects.visible_to(user).values("id")
        on_visible = Q(message__isnull=True) | Q(message_id__in=messages)
        return self.filter(on_visible, ticket_id__in=tickets)
