"""Routes of the audit trail; wired into partnership_crm/urls.py (API under /api/v1/)."""

from django.urls import path

from .trail_views import AuditTrailView, audit_trail_page

api_urlpatterns: list = [
    path("audit-trail/", AuditTrailView.as_view(), name="audit-trail-api"),
]
urlpatterns: list = [
    path("audit/", audit_trail_page, name="audit-trail"),
]
