"""/api/v1/agreements/ and /api/v1/value-reviews/ (renewals/views.py)."""

from rest_framework.routers import SimpleRouter

from .views import AgreementTermViewSet, ValueReviewViewSet

router = SimpleRouter()
router.register("agreements", AgreementTermViewSet, basename="agreement")
router.register("value-reviews", ValueReviewViewSet, basename="value-review")

urlpatterns = router.urls
