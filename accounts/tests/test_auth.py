from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient


def _login(client, email, password="correct horse battery staple"):
    return client.post("/api/v1/auth/token/", {"email": email, "password": password}, format="json")


def test_a_token_from_email_and_password_opens_the_api(world):
    client = APIClient()
    response = _login(client, "S1_AM@example.org")  # emails are case-insensitive
    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["email"] == "s1_am@example.org"
    assert me.json()["memberships"] == [
        {
            "organisation": world.s1.pk,
            "organisation_name": "Acme Learning",
            "organisation_kind": "supplier",
            "role": "account_manager",
        }
    ]


def test_tokens_are_stored_hashed(world):
    token = _login(APIClient(), "s1_am@example.org").json()["token"]
    stored = AuthToken.objects.get(user=world.s1_am)
    assert token not in (stored.digest, stored.token_key)
    assert stored.expiry > timezone.now() + timedelta(days=1)


def test_wrong_password_is_a_400_that_does_not_say_which_part_was_wrong(world):
    response = _login(APIClient(), "s1_am@example.org", "nope")
    assert response.status_code == 400
    assert "do not match" in response.json()["non_field_errors"][0]
    unknown = _login(APIClient(), "nobody@example.org", "nope")
    assert unknown.json() == response.json()


def test_missing_fields_are_field_errors(db):
    response = APIClient().post("/api/v1/auth/token/", {"email": "not-an-email"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"email", "password"}


def test_an_expired_token_is_refused(world):
    client = APIClient()
    token = _login(client, "s1_am@example.org").json()["token"]
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").status_code == 401


def test_logout_revokes_the_token(world):
    client = APIClient()
    token = _login(client, "s1_am@example.org").json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert client.get("/api/v1/me/").status_code == 401


def test_password_guessing_is_throttled(world, settings):
    client = APIClient()
    codes = [_login(client, "s1_am@example.org", f"guess{i}").status_code for i in range(25)]
    assert codes[0] == 400
    assert codes[-1] == 429


@pytest.mark.parametrize("user", ["a_teacher", "outsider"])
def test_me_lists_only_the_users_own_memberships(world, user):
    body = world.client(user).get("/api/v1/me/").json()
    assert body["email"] == f"{user}@example.org"
    assert len(body["memberships"]) == (0 if user == "outsider" else 1)


def test_a_request_costs_one_token_query_however_many_tokens_the_user_has(world):
    """Other tokens (a phone, a laptop, expired ones) are not read on each request; the
    hourly beat task purges the expired ones."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.tasks import purge_expired_tokens

    client = APIClient()
    token = _login(client, "s1_am@example.org").json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    def token_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/api/v1/me/").status_code == 200
        return sum('FROM "knox_authtoken"' in q["sql"] for q in ctx.captured_queries)

    assert token_queries() == 1
    for _ in range(5):
        AuthToken.objects.create(user=world.s1_am, expiry=timedelta(seconds=-1))
    assert token_queries() == 1
    assert purge_expired_tokens() == 5
    assert client.get("/api/v1/me/").status_code == 200  # the live token is kept
