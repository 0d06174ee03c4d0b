from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("organisations", views.OrganisationViewSet, basename="organisation")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("contact-proposals", views.ContactProposalViewSet, basename="contact-proposal")
router.register("contact-notes", views.SupplierContactNoteViewSet, basename="contact-note")
router.register("products", views.ProductViewSet, basename="product")
router.register("partnerships", views.PartnershipViewSet, basename="partnership")
router.register("trial-phases", views.TrialPhaseViewSet, basename="trial-phase")

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="auth-token"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("me/", views.MeView.as_view(), name="me"),
    *router.urls,
]
