from django.urls import path

from . import views

urlpatterns = [
    path("scorecards/", views.ScorecardView.as_view(), name="scorecards"),
    path("portfolio/", views.PortfolioView.as_view(), name="portfolio"),
]
