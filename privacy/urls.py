"""Routes of the privacy app; wired into partnership_crm/urls.py (API under /api/v1/)."""

api_urlpatterns: list = []
urlpatterns: list = []
