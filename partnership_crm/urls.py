from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from inbound.views import sendgrid_inbound
from nudges.unsubscribe import unsubscribe
from nudges.webhooks import sendgrid_events
from privacy import trail_urls as privacy_trail_urls
from privacy import urls as privacy_urls
from visits.feeds import visits_ics

from .health import healthz

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("tickets.urls")),
    path("", include("visits.urls")),
    path("", include("nudges.urls")),
    path("", include("reports.urls")),
    path("", include(privacy_urls.api_urlpatterns)),
    path("", include(privacy_trail_urls.api_urlpatterns)),
    path("", include("renewals.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/auth/", include("rest_framework.urls")),  # session sign-in for the browsable API
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    # SendGrid's Signed Event Webhook: signature and freshness checked in the view.
    path("webhooks/sendgrid/events/", sendgrid_events, name="sendgrid-events"),
    # SendGrid Inbound Parse: replies by email. The secret in the path lets the post in.
    path("webhooks/sendgrid/inbound/<str:secret>/", sendgrid_inbound, name="sendgrid-inbound"),
    path("unsubscribe/<str:token>/", unsubscribe, name="unsubscribe"),
    # A private iCalendar feed: the secret in the path is the credential (visits/feeds.py).
    re_path(
        r"^calendar/(?P<secret>[A-Za-z0-9_-]{20,100})/visits\.ics$",
        visits_ics,
        name="calendar-feed-ics",
    ),
    path("", include("renewals.survey_urls")),
    path("", include(privacy_urls.urlpatterns)),
    path("", include(privacy_trail_urls.urlpatterns)),
    path("", include("frontend.urls")),
]
