"""Sign-in: the email form, and how django-axes names an account and answers a lockout."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


class EmailAuthenticationForm(AuthenticationForm):
    """Django's sign-in form with the email as the login (case-insensitive, as stored)."""

    username = forms.EmailField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )

    def clean_username(self) -> str:
        return (self.cleaned_data.get("username") or "").strip().lower()


class EmailPasswordResetForm(PasswordResetForm):
    email = forms.EmailField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    """The account an attempt is for, the same whichever way axes asks, in any case.

    Axes names the username key after ``USERNAME_FIELD`` ("email") when its backend checks
    a lockout, but records failures from Django's ``user_login_failed`` signal, whose
    credentials say "username" (what ``authenticate(username=...)`` was given, on the
    sign-in page and the API's token view alike). Without reading both, failures and checks
    would name different accounts and nothing would ever lock."""
    credentials = credentials or {}
    value = credentials.get("username") or credentials.get("email")
    if not value:
        value = request.POST.get("username", "")
    return str(value or "").strip().lower()


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """JSON for the API; the sign-in page's own lockout page for people."""
    from django.conf import settings

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = (
        f"Too many failed sign-ins for this account. Try again in {minutes} minutes, "
        "or reset your password."
    )
    status = settings.AXES_HTTP_RESPONSE_CODE
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return render(
        request,
        "frontend/auth/locked_out.html",
        {"message": message, "minutes": minutes},
        status=status,
    )
