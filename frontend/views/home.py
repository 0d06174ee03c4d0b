"""The role-aware start page, and sign-in."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy

from accounts.scoping import scope_for

from ..auth import EmailAuthenticationForm, EmailPasswordResetForm
from ..roles import home_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Each role starts on its main page; someone with no role yet is told what to do."""
    target = home_for(scope_for(request.user))
    if target is not None:
        return redirect(target)
    return render(request, "frontend/no_role.html")


login = auth_views.LoginView.as_view(
    template_name="frontend/auth/login.html",
    authentication_form=EmailAuthenticationForm,
    redirect_authenticated_user=True,
)
logout = auth_views.LogoutView.as_view()
password_reset = auth_views.PasswordResetView.as_view(
    template_name="frontend/auth/password_reset_form.html",
    form_class=EmailPasswordResetForm,
    email_template_name="frontend/emails/password_reset_email.txt",
    subject_template_name="frontend/emails/password_reset_subject.txt",
    success_url=reverse_lazy("password_reset_done"),
)
password_reset_done = auth_views.PasswordResetDoneView.as_view(
    template_name="frontend/auth/password_reset_done.html"
)
password_reset_confirm = auth_views.PasswordResetConfirmView.as_view(
    template_name="frontend/auth/password_reset_confirm.html",
    success_url=reverse_lazy("password_reset_complete"),
)
password_reset_complete = auth_views.PasswordResetCompleteView.as_view(
    template_name="frontend/auth/password_reset_complete.html"
)
