from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("visits", views.VisitViewSet, basename="visit")
router.register("readiness-actions", views.FollowUpActionViewSet, basename="readiness-action")
router.register("time-entries", views.TimeEntryViewSet, basename="time-entry")

urlpatterns = router.urls
