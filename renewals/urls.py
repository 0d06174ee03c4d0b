"""/api/v1/agreements/ and /api/v1/value-reviews/ (renewals/views.py)."""

from rest_framework.routers import SimpleRouter

router = SimpleRouter()

urlpatterns = router.urls
