"""Routes of the privacy app; wired into partnership_crm/urls.py (API under /api/v1/)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import api, views

router = SimpleRouter()
router.register("people", api.PersonViewSet, basename="person")

api_urlpatterns: list = [*router.urls]
urlpatterns: list = [
    path("school/data-held/", views.data_held, name="data-held"),
    path("school/data-held/<int:pk>/", views.person_export, name="data-held-person"),
    path("school/data-held/<int:pk>/erase/", views.person_erase, name="data-held-erase"),
]
