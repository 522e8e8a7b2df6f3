"""Login lockout, long names and password-reset limits (issue 10, OWASP ASVS L2).

The look-alike tests matter most on PostgreSQL, whose case-insensitive comparison maps
the dotless i (U+0131) to I and the long s (U+017F) to S; CI runs this file there too.
"""

import re

import pytest
from django.urls import reverse

from support.models import OutboundEmail
from tests.factories import PASSWORD, SupportUserFactory, UserFactory

pytestmark = pytest.mark.django_db

# Written as escapes: ruff (rightly) flags look-alike letters in source.
DOTLESS_I = "\u0131"  # PostgreSQL's UPPER() makes it I; casefold() leaves it alone
LONG_S = "\u017f"  # casefold() and UPPER() both make it s / S


def fullwidth(text: str) -> str:
    """The full-width forms a Japanese keyboard types (NFKC maps them back)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


ADDRESS = "shiro.chichibu@example.jp"
# Other spellings of ADDRESS itself: each must reach the account and its lockout.
SPELLINGS = [
    pytest.param("SHIRO.Chichibu@Example.JP", id="case"),
    pytest.param(f"{LONG_S}hiro.chichibu@example.jp", id="long-s"),
    pytest.param(f"{fullwidth('shiro.chichibu')}@example.jp", id="fullwidth"),
    pytest.param(fullwidth("SHIRO.CHICHIBU@EXAMPLE.JP"), id="fullwidth-at-and-case"),
    pytest.param(" shiro.chichibu@example.jp ", id="spaces"),
]
# Addresses that only look like ADDRESS: another address, never a way into ADDRESS's
# account (PostgreSQL's comparison alone used to let them in, each with a fresh quota).
LOOK_ALIKES = [
    pytest.param(f"sh{DOTLESS_I}ro.ch{DOTLESS_I}ch{DOTLESS_I}bu@example.jp", id="dotless-i"),
    pytest.param(f"{LONG_S}h{DOTLESS_I}ro.chichibu@example.jp", id="long-s-and-dotless-i"),
    pytest.param(f"SH{DOTLESS_I}RO.chichibu@example.jp", id="dotless-i-and-case"),
]


def login(client, email, password=PASSWORD):
    return client.post(reverse("login"), {"username": email, "password": password})


def lock_out(client, settings, email=ADDRESS):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, email, "wrong-password")


def logged_in_as(client):
    return client.session.get("_auth_user_id")


@pytest.mark.parametrize("variant", SPELLINGS + LOOK_ALIKES)
def test_a_locked_address_stays_locked_whatever_its_spelling(client, settings, variant):
    UserFactory(email=ADDRESS)
    lock_out(client, settings)

    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = login(client, variant)  # the right password, through a look-alike

        assert logged_in_as(client) is None
        assert response.status_code in (200, 429)
    assert login(client, ADDRESS).status_code == 429


@pytest.mark.parametrize("variant", SPELLINGS)
def test_guesses_under_another_spelling_count_against_the_address(client, settings, variant):
    UserFactory(email=ADDRESS)
    lock_out(client, settings, email=variant)

    response = login(client, ADDRESS)

    assert response.status_code == 429
    assert logged_in_as(client) is None


@pytest.mark.parametrize("variant", SPELLINGS)
def test_the_account_is_found_under_every_spelling_of_its_address(client, variant):
    user = UserFactory(email=ADDRESS)

    login(client, variant)

    assert logged_in_as(client) == str(user.pk)


@pytest.mark.parametrize("variant", LOOK_ALIKES)
def test_a_look_alike_address_does_not_log_into_the_account_it_resembles(client, variant):
    UserFactory(email=ADDRESS)

    response = login(client, variant)

    assert response.status_code == 200
    assert response.context["form"].errors
    assert logged_in_as(client) is None


def test_two_accounts_whose_addresses_differ_by_a_dotless_i_each_log_in_as_themselves(client):
    # Django's e-mail validator lets the dotless i through, so such an account can exist.
    city = UserFactory(email="city.chichibu@example.jp")
    dotless_address = f"c{DOTLESS_I}ty.chichibu@example.jp"
    dotless = UserFactory(email=dotless_address, password="dotless-pass-1")

    login(client, dotless_address, "dotless-pass-1")
    assert logged_in_as(client) == str(dotless.pk)
    client.logout()
    login(client, dotless_address)  # the other account's password
    assert logged_in_as(client) is None
    login(client, "city.chichibu@example.jp")
    assert logged_in_as(client) == str(city.pk)


def test_a_success_through_a_look_alike_does_not_lift_the_lock(client, settings):
    UserFactory(email=ADDRESS)
    lock_out(client, settings)

    for variant in SPELLINGS + LOOK_ALIKES:
        login(client, variant.values[0])

    assert login(client, ADDRESS).status_code == 429
    assert logged_in_as(client) is None


def test_the_admin_adds_a_user_under_the_canonical_address(admin_client):
    from portal.accounts.models import User

    admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": f"{LONG_S}HIRO.Chichibu@Example.JP",
            "password1": "a-long-pass-1",
            "password2": "a-long-pass-1",
            "usable_password": "true",
        },
    )

    assert User.objects.filter(email=ADDRESS).exists()


LONG_NAME = "a" * 300 + "@example.jp"


def test_an_over_long_address_on_the_login_page_is_a_form_error(client):
    response = login(client, LONG_NAME, "whatever")

    assert response.status_code == 200
    assert response.context["form"].errors


def test_an_over_long_address_on_the_admin_login_is_a_form_error(client):
    SupportUserFactory(is_staff=True)

    response = client.post(reverse("admin:login"), {"username": LONG_NAME, "password": "whatever"})

    assert response.status_code == 200
    assert response.context["form"].errors


def test_an_over_long_address_at_the_token_api_is_a_400(client):
    response = client.post(reverse("api-token"), {"username": LONG_NAME, "password": "whatever"})

    assert response.status_code == 400


def test_over_long_addresses_still_lock_out_after_the_failure_limit(client, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, LONG_NAME, "whatever")

    assert login(client, LONG_NAME, "whatever").status_code == 429


def request_reset(client, email, **extra):
    return client.post(reverse("password_reset"), {"email": email}, follow=True, **extra)


def page(response) -> str:
    # The CSRF token of the page's language form changes with every response.
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def queued_resets():
    return OutboundEmail.objects.filter(key__startswith="password-reset:").count()


def test_the_fourth_reset_request_for_an_address_within_the_hour_sends_nothing(client, settings):
    UserFactory(email=ADDRESS)
    pages = [request_reset(client, ADDRESS) for _ in range(settings.PASSWORD_RESET_PER_ADDRESS)]
    assert queued_resets() == settings.PASSWORD_RESET_PER_ADDRESS

    # Another spelling of the same address counts with it.
    limited = request_reset(client, "Shiro.Chichibu@example.jp")

    assert queued_resets() == settings.PASSWORD_RESET_PER_ADDRESS
    assert limited.redirect_chain == pages[0].redirect_chain
    assert page(limited) == page(pages[0])


def test_reset_requests_come_back_after_the_hour(client, settings, time_machine):
    UserFactory(email=ADDRESS)
    time_machine.move_to("2026-03-11 14:46:00+09:00", tick=False)
    for _ in range(settings.PASSWORD_RESET_PER_ADDRESS + 1):
        request_reset(client, ADDRESS)

    time_machine.shift(60 * 60 + 1)
    request_reset(client, ADDRESS)

    assert queued_resets() == settings.PASSWORD_RESET_PER_ADDRESS + 1


def test_one_address_over_its_limit_does_not_hold_back_another(client, settings):
    UserFactory(email=ADDRESS)
    UserFactory(email="colleague@example.jp")
    for _ in range(settings.PASSWORD_RESET_PER_ADDRESS + 2):
        request_reset(client, ADDRESS)

    request_reset(client, "colleague@example.jp")

    assert OutboundEmail.objects.filter(to=["colleague@example.jp"]).count() == 1


def test_reset_requests_from_one_client_are_limited_across_addresses(client, settings):
    emails = [UserFactory().email for _ in range(settings.PASSWORD_RESET_PER_IP + 1)]

    for email in emails:
        request_reset(client, email)

    assert queued_resets() == settings.PASSWORD_RESET_PER_IP


def test_a_reset_for_an_unknown_address_shows_the_same_page_and_counts_too(client, settings):
    UserFactory(email=ADDRESS)
    known = request_reset(client, ADDRESS)
    for _ in range(settings.PASSWORD_RESET_PER_ADDRESS + 1):
        unknown = request_reset(client, "nobody@example.jp")

    assert unknown.redirect_chain == known.redirect_chain
    assert page(unknown) == page(known)
    assert queued_resets() == 1
