"""The staff survey's page, answered from the email link without signing in (the signed
token in the path is the credential; renewals/survey.py)."""

from django.urls import path

from .survey_views import survey

urlpatterns = [
    path("survey/<str:token>/", survey, name="survey"),
]
