import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, identify_hasher, make_password
from django.contrib.auth.models import Group
from django.core import mail
from django.db import IntegrityError, transaction
from django.urls import reverse

from portal import settings as portal_settings
from portal.accounts.models import User
from portal.accounts.throttling import client_ip
from tests.factories import PASSWORD, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def login(client, email, password=PASSWORD):
    return client.post(reverse("login"), {"username": email, "password": password})


def test_customer_logs_in_with_the_email_address_in_any_case(client):
    UserFactory(email="tanaka@town.example.jp")

    response = login(client, "Tanaka@Town.Example.JP")

    assert response.status_code == 302
    assert response["Location"] == reverse("home")


def test_wrong_password_shows_the_form_again_with_an_error(client):
    UserFactory(email="tanaka@town.example.jp")

    response = login(client, "tanaka@town.example.jp", "wrong-password")

    assert response.status_code == 200
    assert response.context["form"].errors


def test_repeated_failures_lock_the_login_even_with_the_right_password(client, settings):
    UserFactory(email="tanaka@town.example.jp")
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        # Changing the case of the address does not buy more guesses.
        email = "tanaka@town.example.jp" if attempt % 2 else "TANAKA@Town.Example.JP"
        login(client, email, "wrong-password")

    response = login(client, "tanaka@town.example.jp")

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert "registration/locked_out.html" in [t.name for t in response.templates]


def test_a_lockout_does_not_lock_other_users_behind_the_same_address(client, settings):
    UserFactory(email="attacked@town.example.jp")
    UserFactory(email="colleague@town.example.jp")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, "attacked@town.example.jp", "wrong-password")

    response = login(client, "colleague@town.example.jp")

    assert response.status_code == 302


def test_password_reset_mails_a_link_that_sets_a_new_password(client, send_emails):
    user = UserFactory(email="tanaka@town.example.jp")

    client.post(reverse("password_reset"), {"email": "tanaka@town.example.jp"})
    assert mail.outbox == []  # queued by the request, sent by a worker
    (sent,) = send_emails()
    link = next(line for line in sent.body.splitlines() if "/password/reset/" in line)
    form_url = client.get(link.strip(), follow=True).redirect_chain[-1][0]
    client.post(form_url, {"new_password1": "a-new-long-pass", "new_password2": "a-new-long-pass"})

    user.refresh_from_db()
    assert user.check_password("a-new-long-pass")


def test_password_change_requires_the_old_password(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(
        reverse("password_change"),
        {
            "old_password": "nope",
            "new_password1": "x-new-long-pass",
            "new_password2": "x-new-long-pass",
        },
    )

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


OWASP_ARGON2ID = {"variety": "argon2id", "memory_cost": 19 * 1024, "time_cost": 2, "parallelism": 1}


def argon2_parameters(encoded: str) -> dict:
    """The argon2 variety and costs a stored hash was made with (they are part of it)."""
    decoded = identify_hasher(encoded).decode(encoded)
    return {key: decoded[key] for key in OWASP_ARGON2ID}


def test_a_new_password_is_hashed_with_argon2id_at_owasps_parameters(client, settings):
    # The suite itself hashes with MD5 for speed (conftest): the user starts with an MD5
    # hash (still checked, last), and the change through the form hashes with the
    # portal's first hasher.
    user = UserFactory()
    settings.PASSWORD_HASHERS = [*portal_settings.PASSWORD_HASHERS, *settings.PASSWORD_HASHERS]
    client.force_login(user)

    changed = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "x-new-long-pass",
            "new_password2": "x-new-long-pass",
        },
    )

    assert changed.status_code == 302
    user.refresh_from_db()
    assert user.check_password("x-new-long-pass")
    assert argon2_parameters(user.password) == OWASP_ARGON2ID


def test_logging_in_re_hashes_a_password_stored_with_djangos_default_argon2(client, settings):
    # given a customer whose hash was made before this change: Django's argon2 defaults
    settings.PASSWORD_HASHERS = portal_settings.PASSWORD_HASHERS
    user = UserFactory(email="tanaka@town.example.jp")
    User.objects.filter(pk=user.pk).update(
        password=make_password(PASSWORD, hasher=Argon2PasswordHasher())
    )
    user.refresh_from_db()
    old_hash = user.password
    assert argon2_parameters(old_hash)["memory_cost"] == 102400  # 100 MiB, 8 lanes

    # when they log in on the login page
    assert client.get(reverse("login")).status_code == 200
    response = login(client, "tanaka@town.example.jp")

    # then they are in, and their stored hash now has the portal's parameters
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    user.refresh_from_db()
    assert user.password != old_hash
    assert argon2_parameters(user.password) == OWASP_ARGON2ID
    # and the new hash lets them in again
    client.logout()
    assert login(client, "tanaka@town.example.jp").status_code == 302


def test_email_addresses_are_unique_whatever_their_case():
    UserFactory(email="tanaka@town.example.jp")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="TANAKA@town.example.jp")


def test_a_customer_user_cannot_be_staff():
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="x@example.com", customer=CustomerFactory(), is_staff=True)


def test_roles_exist_and_operators_have_every_support_permission():
    roles = {group.name: set(group.permissions.all()) for group in Group.objects.all()}

    assert set(roles) >= {"customer", "support", "operator"}
    assert roles["support"] < roles["operator"]
    codenames = {p.codename for p in roles["operator"] - roles["support"]}
    assert "access_operator_dashboard" in codenames
    assert {p.codename for p in roles["customer"]} == {"access_customer_portal"}


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2"),  # no proxy: X-Forwarded-For is the client's own text
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # a forged entry on the left is ignored
        (2, "203.0.113.9, 10.0.0.7", "203.0.113.9"),
    ],
)
def test_login_throttling_reads_the_client_address_behind_trusted_proxies(
    rf, settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = rf.post("/accounts/login/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR="10.0.0.2")

    assert client_ip(request) == expected


def test_behind_a_proxy_one_attackers_failures_do_not_lock_another_office(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    UserFactory(email="tanaka@town.example.jp")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            reverse("login"),
            {"username": "tanaka@town.example.jp", "password": "wrong"},
            HTTP_X_FORWARDED_FOR="198.51.100.66",
        )

    response = client.post(
        reverse("login"),
        {"username": "tanaka@town.example.jp", "password": PASSWORD},
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )

    assert response.status_code == 302
