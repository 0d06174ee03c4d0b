"""The staff survey's page, answered from the email link without signing in."""

urlpatterns: list = []
