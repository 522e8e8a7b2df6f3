"""The API's schema: valid, and every operation says how it can refuse a request."""

import io

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.factories import SiteFactory, UserFactory


@pytest.fixture
def schema():
    out = io.StringIO()
    # --validate checks it against the OpenAPI 3 meta-schema; a warning fails too.
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    return yaml.safe_load(out.getvalue())


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_is_valid_and_every_operation_documents_its_4xx(schema):
    def missing(path, operation):
        documented = set(operation["responses"])
        needed = {"400", "405"}  # a body or query that does not parse; a wrong method
        if "{" in path:
            needed.add("404")  # an id that is not the caller's
        if {} not in operation.get("security", [{}]) and not documented & {"401", "403"}:
            needed.add("403")  # an anonymous caller or the wrong role
        return sorted(needed - documented)

    undocumented = {
        f"{method} {path}": missing(path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if missing(path, operation)
    }

    assert not undocumented


def test_every_documented_error_is_the_one_envelope(schema):
    for name, operation in operations(schema):
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert set(component["properties"]) == {"type", "errors"}, (name, status)


def test_a_disaster_not_ended_has_a_nullable_ended_at(schema):
    for component in ("DisasterOutput", "DisasterListOutput"):
        assert schema["components"]["schemas"][component]["properties"]["ended_at"]["nullable"]


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ("DamageReportInput", "description"),
        ("DeclareInput", "title"),
        ("DeclareInput", "idempotency_key"),
        ("FollowUpInput", "body"),
        ("InquiryInput", "subject"),
        ("InquiryInput", "body"),
    ],
)
def test_fields_the_server_refuses_blank_say_so(schema, component, field):
    assert schema["components"]["schemas"][component]["properties"][field]["minLength"] == 1


@pytest.mark.django_db
def test_a_refused_request_answers_in_the_envelope_with_each_field():
    api = APIClient()
    api.force_authenticate(UserFactory())

    response = api.post("/api/v1/inquiries/", {"subject": "", "site": "abc"}, format="json")

    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    errors = {e["attr"]: e for e in response.json()["errors"]}
    assert set(errors) == {"subject", "body", "site"}
    assert errors["body"]["code"] == "required" and errors["body"]["detail"]


@pytest.mark.django_db
def test_an_unknown_api_url_is_a_404_in_the_envelope_and_a_page_elsewhere(client):
    api = APIClient()
    api.force_authenticate(UserFactory())

    api_404 = api.get("/api/v1/inquiries/not-a-number.1/follow-up/")
    page_404 = client.get("/no-such-page/")

    assert api_404.status_code == 404
    assert api_404.json()["errors"][0]["code"] == "not_found"
    assert page_404.status_code == 404 and page_404["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_a_wrong_site_token_is_a_403_in_the_envelope():
    SiteFactory()

    response = APIClient().post("/api/v1/check-in/", HTTP_AUTHORIZATION="SiteToken nope")

    assert response.status_code == 403
    assert response.json()["type"] == "client_error"
