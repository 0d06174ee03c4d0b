"""Sign-in by email, brute-force lockout (django-axes), password reset by email, sign-out."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

PASSWORD = "correct horse battery staple"


def _sign_in(client: Client, email: str, password: str = PASSWORD):
    return client.post("/accounts/sign-in/", {"username": email, "password": password})


def test_the_sign_in_page_is_labelled(db):
    html = Client().get("/accounts/sign-in/").content.decode()
    assert '<label for="id_username">Email</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'autocomplete="email"' in html


def test_signing_in_with_an_email_in_any_case_goes_to_the_role_home(world):
    client = Client()
    response = _sign_in(client, "A_Teacher@Example.org")
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/")["Location"] == "/feedback/"


def test_a_wrong_password_is_a_form_error(world):
    response = _sign_in(Client(), "a_teacher@example.org", "nope")
    assert response.status_code == 200
    assert "do not match an account" in response.content.decode()


def test_five_failures_lock_the_account_from_that_address_for_15_minutes(world):
    client = Client()
    for _ in range(5):
        _sign_in(client, "a_teacher@example.org", "guess")
    locked = _sign_in(client, "a_teacher@example.org")
    assert locked.status_code == 429
    assert "Try again in 15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    # Someone else in the same staffroom (same address) still signs in.
    assert _sign_in(Client(), "a_lead@example.org").status_code == 302
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert _sign_in(client, "a_teacher@example.org").status_code == 302


def test_the_api_token_endpoint_is_guarded_too_and_answers_json(world):
    api = APIClient()
    url = "/api/v1/auth/token/"
    ok = api.post(url, {"email": "s1_am@example.org", "password": PASSWORD}, format="json")
    assert ok.status_code == 200 and "token" in ok.json()
    for _ in range(5):
        api.post(url, {"email": "s1_am@example.org", "password": "guess"}, format="json")
    locked = api.post(url, {"email": "S1_AM@example.org", "password": PASSWORD}, format="json")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.json()["detail"]


def test_password_reset_by_email(world):
    client = Client()
    response = client.post("/accounts/password-reset/", {"email": "a_teacher@example.org"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password-reset/sent/"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a new long passphrase 42", "new_password2": "a new long passphrase 42"},
    )
    assert done["Location"] == "/accounts/reset/done/"
    assert (
        _sign_in(Client(), "a_teacher@example.org", "a new long passphrase 42").status_code == 302
    )
    # Unknown addresses are not revealed.
    other = client.post("/accounts/password-reset/", {"email": "nobody@example.org"})
    assert other.status_code == 302 and len(mail.outbox) == 1


def test_signing_out(world):
    client = Client()
    _sign_in(client, "s1_am@example.org")
    assert client.get("/portfolio/").status_code == 200
    response = client.post("/accounts/sign-out/")
    assert response.status_code == 302 and response["Location"] == "/accounts/sign-in/"
    assert client.get("/portfolio/").status_code == 302
