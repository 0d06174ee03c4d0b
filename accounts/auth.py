"""API token authentication: django-rest-knox's, without its per-request sweep.

knox's ``_cleanup_token`` loads every token of the user on every request to delete their
expired ones (a query and a row per token, growing with the user's logins). Expired tokens
are purged by the ``accounts.tasks.purge_expired_tokens`` beat task instead; a request still
refuses (and deletes) its own token once it has expired.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.signals import token_expired


class TokenAuthentication(KnoxTokenAuthentication):
    def _cleanup_token(self, auth_token: Any) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            token_expired.send(
                sender=self.__class__, username=auth_token.user.get_username(), source="auth_token"
            )
            return True
        return False


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI description of the same tokens (drf-spectacular matches classes exactly)."""

    target_class = "accounts.auth.TokenAuthentication"
