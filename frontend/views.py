from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    """Until the role pages land (frontend issue), the home page points at the API."""
    return render(request, "frontend/home.html")
