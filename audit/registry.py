"""The tracked models: every model with simple-history's ``history = HistoricalRecords()``.

Used by the trail (privacy/trail.py), erasure (privacy/erasure.py scrubs the historical
tables too) and retention.
"""

from __future__ import annotations

from django.apps import apps
from django.db import models


def tracked_models() -> list[tuple[type[models.Model], type[models.Model]]]:
    """(model, its historical model) for every tracked model, in app-registry order."""
    found = []
    for model in apps.get_models():
        attr = getattr(model._meta, "simple_history_manager_attribute", None)
        if attr is None:
            continue
        found.append((model, getattr(model, attr).model))
    return found


def historical_model_for(model: type[models.Model]) -> type[models.Model] | None:
    for tracked, historical in tracked_models():
        if tracked is model:
            return historical
    return None


def m2m_history_models() -> list[tuple[type[models.Model], type[models.Model]]]:
    """(historical model, its many-to-many snapshot model) for the tracked many-to-many
    fields (Partnership.products, TrialPhase.cohort): each snapshot row points at its
    historical row by ``history_id`` (no database constraint: delete them together)."""
    from simple_history.models import HistoricalRecords

    return [
        (m2m._meta.get_field("history").related_model, m2m)
        for m2m in HistoricalRecords.m2m_models.values()
    ]
