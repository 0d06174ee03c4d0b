from django.urls import path
from rest_framework.routers import SimpleRouter

from . import feeds, views

router = SimpleRouter()
router.register("visits", views.VisitViewSet, basename="visit")
router.register("readiness-actions", views.FollowUpActionViewSet, basename="readiness-action")
router.register("time-entries", views.TimeEntryViewSet, basename="time-entry")

urlpatterns = [
    path("me/calendar-feed/", feeds.CalendarFeedView.as_view(), name="calendar-feed"),
    *router.urls,
]
