"""API tokens: they expire, their owner lists and revokes them, a new password revokes them.

And the answers a client gets: 401 with a challenge for a bad token, 429 when locked out.
"""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal.accounts.models import ApiToken
from portal.accounts.tokens import issue_api_token
from tests.factories import PASSWORD, OperatorUserFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
TOKENS_URL = "/api/v1/auth/tokens/"


def errors(response) -> list[str]:
    """The messages of an API error (the one error envelope)."""
    return [error["detail"] for error in response.json()["errors"]]


@pytest.fixture
def alice():
    user = UserFactory(email="alice@a.example.com")
    SubscriptionFactory(site__customer=user.customer, contract_number="A-001")
    return user


def log_in(email, password=PASSWORD, HTTP_ACCEPT_LANGUAGE="ja", **fields):
    return APIClient().post(
        TOKEN_URL,
        {"username": email, "password": password, **fields},
        HTTP_ACCEPT_LANGUAGE=HTTP_ACCEPT_LANGUAGE,
    )


def client_with(secret):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return api


def works(secret) -> bool:
    return client_with(secret).get("/api/v1/subscriptions/").status_code == 200


# --- Getting a token --------------------------------------------------------------------


def test_a_client_logs_in_and_gets_a_named_token_valid_for_30_days(alice):
    response = log_in("Alice@A.example.com", client="監視サーバー")

    assert response.status_code == 200
    body = response.json()
    expiry = timezone.datetime.fromisoformat(body["expiry"])
    assert abs(expiry - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert body["client"] == "監視サーバー"
    assert works(body["token"])
    # Only a digest is stored, never the secret itself.
    stored = ApiToken.objects.get(pk=body["id"])
    assert body["token"] not in {stored.digest, stored.token_key}


def test_each_login_gets_a_token_of_its_own_and_both_work(alice):
    first = log_in(alice.email, client="laptop").json()["token"]
    second = log_in(alice.email, client="server").json()["token"]

    assert first != second
    assert works(first) and works(second)


def test_a_stale_token_sent_along_does_not_stop_a_login(alice):
    response = client_with("stale").post(TOKEN_URL, {"username": alice.email, "password": PASSWORD})

    assert response.status_code == 200


def test_a_wrong_password_gets_400_with_the_reason(alice):
    response = log_in(alice.email, "wrong-password")

    assert response.status_code == 400
    assert errors(response)


def test_a_locked_out_login_gets_429_with_a_clear_message_even_with_the_right_password(
    alice, settings
):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(alice.email, "wrong-password")

    response = log_in(alice.email, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 429
    assert errors(response)[0] == (
        "Too many failed log-ins for this account from this address: it is locked. "
        "Try again in 30 minutes."
    )
    assert int(response["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    assert not ApiToken.objects.exists()


def test_a_successful_token_login_forgets_the_earlier_failures(alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(alice.email, "wrong-password")
    assert log_in(alice.email).status_code == 200

    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(alice.email, "wrong-password")
    response = log_in(alice.email)

    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.last_login is not None


def test_a_lockout_message_is_in_japanese_by_default(alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(alice.email, "wrong-password")

    response = log_in(alice.email)

    assert errors(response)[0] == (
        "このアドレスからこのアカウントへのログイン失敗が多すぎるため、ロックされています。"
        "30 分後にもう一度お試しください。"
    )


def test_a_user_holds_a_bounded_number_of_tokens(alice, settings):
    settings.API_TOKENS_PER_USER = 2
    log_in(alice.email)
    log_in(alice.email)

    response = log_in(alice.email, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    assert "revoke one" in errors(response)[0]
    assert alice.auth_token_set.count() == 2


# --- Bad tokens -------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Token nope", "Token ", "Token a b"])
def test_a_bad_token_gets_401_with_a_www_authenticate_challenge(alice, header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get("/api/v1/subscriptions/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_an_anonymous_call_gets_401_with_the_challenge():
    response = APIClient().get("/api/v1/subscriptions/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_token_stops_working_when_it_expires(alice):
    secret = log_in(alice.email).json()["token"]

    with time_machine.travel(timezone.now() + timedelta(days=30, minutes=1), tick=False):
        response = client_with(secret).get("/api/v1/subscriptions/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not alice.auth_token_set.exists()


def test_a_deactivated_users_token_stops_working(alice):
    secret = log_in(alice.email).json()["token"]
    alice.is_active = False
    alice.save()

    assert client_with(secret).get("/api/v1/subscriptions/").status_code == 401


# --- The owner's list and revocation, through the API ------------------------------------


def test_the_owner_lists_own_live_tokens_and_sees_which_is_in_use(
    alice, django_assert_max_num_queries
):
    current = log_in(alice.email, client="server").json()
    log_in(alice.email, client="laptop")
    issue_api_token(user=UserFactory(customer=alice.customer), client="colleague")
    for _ in range(5):
        issue_api_token(user=alice)

    with django_assert_max_num_queries(6):
        response = client_with(current["token"]).get(TOKENS_URL)

    rows = response.json()["results"]
    assert len(rows) == 7
    assert {row["client"] for row in rows} == {"server", "laptop", ""}
    assert [row["id"] for row in rows if row["current"]] == [current["id"]]
    assert set(rows[0]) == {"id", "client", "created", "expiry", "current"}


def test_the_owner_revokes_one_token_and_only_that_one_stops_working(alice):
    laptop = log_in(alice.email, client="laptop").json()
    server = log_in(alice.email, client="server").json()

    response = client_with(server["token"]).delete(f"{TOKENS_URL}{laptop['id']}/")

    assert response.status_code == 204
    assert not works(laptop["token"])
    assert works(server["token"])


def test_nobody_revokes_another_users_token(alice):
    bobs = log_in(UserFactory(email="bob@b.example.com").email).json()
    mine = log_in(alice.email).json()

    response = client_with(mine["token"]).delete(f"{TOKENS_URL}{bobs['id']}/")

    assert response.status_code == 404
    assert works(bobs["token"])


def test_log_out_everywhere_revokes_every_token_of_the_caller_only(alice):
    laptop = log_in(alice.email).json()["token"]
    server = log_in(alice.email).json()["token"]
    bobs = log_in(UserFactory(email="bob@b.example.com").email).json()["token"]

    response = client_with(laptop).post(f"{TOKENS_URL}revoke-all/")

    assert response.status_code == 204
    assert not works(laptop) and not works(server)
    assert works(bobs)


def test_the_schema_documents_the_token_endpoints(client, alice):
    client.force_login(alice)

    schema = client.get(reverse("api-schema"), {"format": "json"}).json()

    assert set(schema["paths"][TOKEN_URL]["post"]["responses"]) >= {"200", "400", "429"}
    assert "get" in schema["paths"][TOKENS_URL]
    assert "delete" in schema["paths"][TOKENS_URL + "{id}/"]
    assert "post" in schema["paths"][TOKENS_URL + "revoke-all/"]
    assert "knoxApiToken" in schema["components"]["securitySchemes"]


# --- The "API access" page ----------------------------------------------------------------


def test_a_customer_opens_api_access_from_the_menu_and_revokes_a_token(client, alice):
    laptop = log_in(alice.email, client="laptop").json()
    server = log_in(alice.email, client="server").json()
    client.force_login(alice)

    home = client.get(reverse("home"))
    link = re.search(r'href="([^"]+)">API アクセス<', home.text).group(1)
    page = client.get(link)
    assert page.status_code == 200
    assert "laptop" in page.text and "server" in page.text
    form_token = re.search(
        r'name="token" value="(\d+)"', page.text[page.text.index("laptop") :]
    ).group(1)
    response = client.post(link, {"token": form_token}, follow=True)

    assert str(laptop["id"]) == form_token
    assert "laptop" not in response.text
    assert "server" in response.text
    assert not works(laptop["token"])
    assert works(server["token"])


def test_the_api_access_page_is_in_english_on_request(client, alice):
    log_in(alice.email, client="laptop")
    client.force_login(alice)

    response = client.get(reverse("api-tokens"), HTTP_ACCEPT_LANGUAGE="en")

    assert "API access" in response.text
    assert "Revoke" in response.text


def test_the_api_access_page_revokes_all_tokens(client, alice):
    secrets = [log_in(alice.email).json()["token"] for _ in range(2)]
    client.force_login(alice)

    response = client.post(reverse("api-tokens"), {"all": "1"}, follow=True)

    assert response.status_code == 200
    assert not any(works(secret) for secret in secrets)
    assert "API トークンはありません" in response.text


@pytest.mark.parametrize("token", ["other", "x", ""])
def test_the_api_access_page_does_not_revoke_another_users_token(client, alice, token):
    bobs = log_in(UserFactory(email="bob@b.example.com").email).json()
    client.force_login(alice)

    response = client.post(
        reverse("api-tokens"), {"token": bobs["id"] if token == "other" else token}
    )

    assert response.status_code == 404
    assert works(bobs["token"])


def test_the_api_access_page_wants_a_login(client):
    response = client.get(reverse("api-tokens"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- A new password revokes every token ------------------------------------------------


def test_changing_the_password_revokes_every_api_token(client, alice):
    secret = log_in(alice.email).json()["token"]
    client.force_login(alice)

    page = client.get(reverse("password_change"))
    assert "API トークン" in page.text  # the form says what a new password does
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-pass",
            "new_password2": "a-new-long-pass",
        },
    )

    assert response.status_code == 302
    assert not works(secret)


def test_a_failed_password_change_keeps_the_tokens(client, alice):
    secret = log_in(alice.email).json()["token"]
    client.force_login(alice)

    client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "a-new-long-pass", "new_password2": "x"},
    )

    assert works(secret)


def test_resetting_the_password_by_e_mail_revokes_every_api_token(client, alice, send_emails):
    secret = log_in(alice.email).json()["token"]

    client.post(reverse("password_reset"), {"email": alice.email})
    (sent,) = send_emails()
    link = next(line for line in sent.body.splitlines() if "/password/reset/" in line)
    form_url = client.get(link.strip(), follow=True).redirect_chain[-1][0]
    client.post(form_url, {"new_password1": "a-new-long-pass", "new_password2": "a-new-long-pass"})

    alice.refresh_from_db()
    assert alice.check_password("a-new-long-pass")
    assert not works(secret)


def test_an_operator_setting_a_password_in_the_admin_revokes_every_api_token(client, alice):
    secret = log_in(alice.email).json()["token"]
    client.force_login(OperatorUserFactory(is_superuser=True))

    response = client.post(
        reverse("admin:auth_user_password_change", args=[alice.pk]),
        {"password1": "a-new-long-pass", "password2": "a-new-long-pass"},
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a-new-long-pass")
    assert not works(secret)


def test_a_login_that_upgrades_the_password_hash_keeps_the_tokens(alice, settings):
    secret = log_in(alice.email).json()["token"]
    # A new default hasher: the next login re-hashes the same password, nothing more.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    old_hash = alice.password

    log_in(alice.email)

    alice.refresh_from_db()
    assert alice.password != old_hash
    assert works(secret)


# --- The second factor ------------------------------------------------------------------


def test_staff_get_no_token_with_the_password_alone():
    operator = OperatorUserFactory(email="ops@operator.example.jp")

    response = log_in(operator.email)

    assert response.status_code == 403
    assert not ApiToken.objects.filter(user=operator).exists()


def test_a_customer_with_a_second_factor_sends_a_current_code_for_a_token(alice):
    from tests.portal.test_mfa import code_for, enrolled

    device = enrolled(alice)

    without = log_in(alice.email)
    wrong = log_in(alice.email, code="000000" if code_for(device) != "000000" else "111111")
    # after the throttle's wait for the wrong code (one second)
    with time_machine.travel(timezone.now() + timedelta(seconds=3)):
        right = log_in(alice.email, code=code_for(device))

    assert without.status_code == wrong.status_code == 400
    assert "code" in str(without.json())
    assert right.status_code == 200 and works(right.json()["token"])
