from typing import Any

from accounts.tests import factories as f
from partnership_crm.drf import CappedPageNumberPagination


def test_a_page_is_at_most_200_rows_and_links_to_the_next(world: Any) -> None:
    f.ProductFactory.create_batch(205, supplier=world.s1)
    client = world.client("s1_admin")
    body = client.get("/api/v1/products/", {"page_size": 1000}).json()
    assert len(body["results"]) == 200
    assert body["count"] == 206
    assert body["count_capped"] is False
    second = client.get(body["next"]).json()
    assert len(second["results"]) == 6
    assert second["next"] is None
    assert second["previous"]


def test_the_count_stops_at_the_cap_and_says_so(world: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(CappedPageNumberPagination, "count_cap", 10)
    f.ProductFactory.create_batch(30, supplier=world.s1)
    body = world.client("s1_admin").get("/api/v1/products/", {"page_size": 5}).json()
    assert body["count"] == 10
    assert body["count_capped"] is True
    assert body["next"]


def test_bad_page_numbers_are_client_errors(world: Any) -> None:
    client = world.client("s1_admin")
    assert client.get("/api/v1/products/", {"page": "abc"}).status_code == 400
    assert client.get("/api/v1/products/", {"page": 99}).status_code == 404
    assert client.get("/api/v1/products/", {"page": 0}).status_code == 404


def test_bad_filter_values_are_field_errors_not_500(world: Any) -> None:
    client = world.client("s1_am")
    response = client.get("/api/v1/partnerships/", {"stage": "nonsense", "school": "abc"})
    assert response.status_code == 400
    assert {"stage", "school"} <= set(response.json())


def test_the_openapi_schema_describes_every_v1_path(world: Any) -> None:
    response = world.client("s1_am").get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/auth/token/",
        "/api/v1/me/",
        "/api/v1/organisations/",
        "/api/v1/contacts/",
        "/api/v1/products/",
        "/api/v1/partnerships/",
        "/api/v1/partnerships/{id}/transition/",
        "/api/v1/trial-phases/",
    ):
        assert path in paths, path


def test_the_api_docs_load_their_assets_from_our_own_server(client: Any, db: Any) -> None:
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "/static/drf_spectacular_sidecar/" in html
    assert "cdn" not in html.lower()
    assert "https://" not in html
