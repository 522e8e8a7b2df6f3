"""Content-Security-Policy (issue 10): scripts only from the portal's own files."""

import re

import pytest
from django.urls import reverse

from tests.factories import OperatorUserFactory, UserFactory

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


def test_customer_pages_forbid_inline_and_foreign_scripts(client):
    client.force_login(UserFactory())

    for url in [reverse("home"), reverse("upgrades:index"), reverse("incidents:damage-reports")]:
        policy = directives(client.get(url))

        assert policy["default-src"] == ["'self'"]
        # An injected <script>alert(1)</script> or onclick="…" would not run.
        assert policy["script-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]


def test_the_login_page_carries_the_policy_too(client):
    assert directives(client.get(reverse("login")))["script-src"] == ["'self'"]


def test_the_api_docs_start_swagger_ui_from_a_file_not_inline_script(client):
    client.force_login(OperatorUserFactory())

    page = client.get(reverse("api-docs"))
    scripts = re.findall(r"<script([^>]*)>", page.text)
    start = re.search(r'<script src="([^"]*\?script=[^"]*)"', page.text).group(1)
    script = client.get(start.replace("&amp;", "&"))

    assert directives(page)["script-src"] == ["'self'"]
    assert scripts and all("src=" in attributes for attributes in scripts)
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()
