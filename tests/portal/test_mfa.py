"""The second factor: staff enrol at first login and verify at each; customers may opt in."""

import base64
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import SecondFactorReset
from tests.factories import PASSWORD, OperatorUserFactory, SupportUserFactory, UserFactory

pytestmark = pytest.mark.django_db

STAFF_PAGES = ["/admin/", "/admin/accounts/user/", "/desk/", "/operator/"]


def log_in_with_password(client, email):
    response = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert response.status_code == 302
    return client.get(response.url)


def code_for(device: TOTPDevice, *, later: int = 0) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0 - later, digits=6):06d}"


def manual_key_device(user, response) -> TOTPDevice:
    """The authenticator the setup page offers, as the app a person typed the key into."""
    key = re.search(r'id="manual-key">([A-Z2-7 ]+)<', response.content.decode()).group(1)
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert base64.b32encode(device.bin_key).decode() == key.replace(" ", "")
    return device


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


@pytest.mark.parametrize("factory", [SupportUserFactory, OperatorUserFactory])
def test_staff_first_login_enrols_then_the_staff_page_opens(client, factory):
    # given a staff user logging in for the first time with the password
    user = factory(email="staff@example.com")
    page = log_in_with_password(client, "staff@example.com")

    # then before any staff page they are sent to set up an authenticator
    while page.status_code == 302:
        page = client.get(page.url)
    assert page.request["PATH_INFO"] == "/accounts/mfa/setup/"
    body = page.content.decode()
    assert 'src="data:image/svg+xml;base64,' in body
    assert "<script" not in body

    # when they type the key into their app and confirm the code it shows
    device = manual_key_device(user, page)
    confirmed = client.post("/accounts/mfa/setup/", {"code": code_for(device), "next": "/desk/"})

    # then ten recovery codes are shown once, and the staff pages open
    assert confirmed.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", confirmed.content.decode())
    assert len(codes) == 10
    assert sorted(codes) == sorted(StaticToken.objects.values_list("token", flat=True))
    assert client.get("/desk/").status_code == 200
    assert TOTPDevice.objects.get(user=user).confirmed


def test_a_wrong_setup_code_is_refused_with_a_message(client):
    user = SupportUserFactory(email="staff@example.com")
    page = log_in_with_password(client, "staff@example.com")
    page = client.get(page.url) if page.status_code == 302 else page

    response = client.post("/accounts/mfa/setup/", {"code": "000000"})

    assert response.status_code == 400
    assert "コードが正しくありません" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert client.get("/desk/").status_code == 302


@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_with_the_password_only_are_sent_to_verify(client, path):
    # given an operator who has an authenticator and logged in with the password only
    user = OperatorUserFactory()
    enrolled(user)
    client.password_only_login(user)

    # when they open a staff page
    response = client.get(path)

    # then they are sent to the second factor, and come back to the page after it
    assert response.status_code == 302
    assert response.url == f"/accounts/mfa/verify/?next={path.replace('/', '%2F')}"


def test_verify_with_the_app_code_returns_to_the_page(client):
    user = OperatorUserFactory(email="ops@example.com")
    device = enrolled(user)
    log_in_with_password(client, "ops@example.com")
    response = client.get("/operator/")
    assert response.status_code == 302
    form = client.get(response.url)
    assert form.status_code == 200

    done = client.post("/accounts/mfa/verify/", {"code": code_for(device), "next": "/operator/"})

    assert done.status_code == 302
    assert done.url == "/operator/"
    assert client.get("/operator/").status_code == 200


def test_a_used_app_code_cannot_be_replayed(client):
    user = OperatorUserFactory()
    device = enrolled(user)
    code = code_for(device)
    client.password_only_login(user)
    assert client.post("/accounts/mfa/verify/", {"code": code}).status_code == 302

    client.post("/accounts/logout/")
    client.password_only_login(user)
    response = client.post("/accounts/mfa/verify/", {"code": code})

    assert response.status_code == 400


def test_a_recovery_code_works_once(client):
    user = SupportUserFactory()
    enrolled(user)
    device = StaticDevice.objects.create(user=user, name="recovery codes")
    device.token_set.create(token="abcd2345")
    client.password_only_login(user)

    assert client.post("/accounts/mfa/verify/", {"code": "ABCD 2345"}).status_code == 302
    assert client.get("/desk/").status_code == 200

    client.post("/accounts/logout/")
    client.password_only_login(user)
    assert client.post("/accounts/mfa/verify/", {"code": "abcd2345"}).status_code == 400


def test_wrong_codes_are_throttled(client):
    user = OperatorUserFactory()
    device = enrolled(user)
    client.password_only_login(user)
    now = timezone.now()

    with time_machine.travel(now, tick=False):
        assert client.post("/accounts/mfa/verify/", {"code": "000000"}).status_code == 400
        # then even the right code waits, with a message saying how long
        refused = client.post("/accounts/mfa/verify/", {"code": code_for(device)})
        assert refused.status_code == 400
        assert "秒後" in refused.content.decode()
    with time_machine.travel(now + timedelta(seconds=2), tick=False):
        assert client.post("/accounts/mfa/verify/", {"code": code_for(device)}).status_code == 302


def test_unverified_staff_session_is_no_login_to_the_api(client):
    user = OperatorUserFactory()
    enrolled(user)
    client.password_only_login(user)

    response = client.get("/api/v1/operator/disasters/")

    assert response.status_code in (401, 403)
    client.force_login(user)  # now with the second factor
    assert client.get("/api/v1/operator/disasters/").status_code == 200


def test_customers_are_not_asked_for_a_second_factor(client):
    customer = UserFactory(email="chichibu@example.com")
    page = log_in_with_password(client, "chichibu@example.com")

    assert page.status_code == 200
    assert not TOTPDevice.objects.filter(user=customer).exists()


def test_a_customer_opts_in_and_then_verifies_at_login(client):
    # given a customer on their account pages
    customer = UserFactory(email="chichibu@example.com")
    log_in_with_password(client, "chichibu@example.com")
    account = client.get("/accounts/mfa/")
    assert 'href="/accounts/mfa/setup/"' in account.content.decode()

    # when they set up an authenticator
    setup = client.get("/accounts/mfa/setup/")
    device = manual_key_device(customer, setup)
    codes = client.post("/accounts/mfa/setup/", {"code": code_for(device)})
    assert codes.status_code == 200

    # then the next login asks for the code before the home page
    client.post("/accounts/logout/")
    page = client.post("/accounts/login/", {"username": customer.email, "password": PASSWORD})
    assert client.get(page.url).url.startswith("/accounts/mfa/verify/")
    device.refresh_from_db()
    assert (
        client.post("/accounts/mfa/verify/", {"code": code_for(device, later=30)}).status_code
        == 302
    )
    assert client.get("/").status_code == 200


def test_new_recovery_codes_replace_the_old(client):
    user = OperatorUserFactory()
    client.force_login(user)
    old = StaticDevice.objects.create(user=user, name="recovery codes")
    old.token_set.create(token="oldcode2")

    response = client.post("/accounts/mfa/recovery-codes/")

    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.content.decode())
    assert len(codes) == 10
    assert not StaticToken.objects.filter(token="oldcode2").exists()


def test_an_operator_resets_a_colleagues_second_factor_recorded(client):
    # given a support colleague with an authenticator and recovery codes
    colleague = SupportUserFactory(email="colleague@example.com")
    enrolled(colleague)
    StaticDevice.objects.create(user=colleague, name="recovery codes")
    operator = OperatorUserFactory(email="ops@example.com")
    client.force_login(operator)

    # when the operator runs the admin action on them
    response = client.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [colleague.pk]},
        follow=True,
    )

    # then the devices are gone, and the reset is recorded and listed in the admin
    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(user=colleague).exists()
    assert not StaticDevice.objects.filter(user=colleague).exists()
    reset = SecondFactorReset.objects.get()
    assert (reset.user, reset.reset_by, reset.devices_removed) == (colleague, operator, 2)
    listing = client.get("/admin/accounts/secondfactorreset/")
    assert "colleague@example.com" in listing.content.decode()

    # and the colleague enrols again at their next page
    colleague_client = type(client)()
    colleague_client.password_only_login(colleague)
    assert colleague_client.get("/desk/").url.startswith("/accounts/mfa/setup/")


def test_support_cannot_reset_a_second_factor(client):
    colleague = OperatorUserFactory()
    enrolled(colleague)
    client.force_login(SupportUserFactory())

    changelist = client.get("/admin/accounts/user/")
    response = client.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [colleague.pk]},
    )

    assert "reset_second_factor" not in changelist.content.decode()
    assert response.status_code in (200, 302)
    assert TOTPDevice.objects.filter(user=colleague).exists()
    assert not SecondFactorReset.objects.exists()
    assert not LogEntry.objects.exists()


def test_an_operator_without_the_second_factor_cannot_reset_one(client):
    # given an operator who logged in with the password only
    operator = OperatorUserFactory()
    enrolled(operator)
    client.password_only_login(operator)

    # when they post the reset action on their own account
    response = client.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [operator.pk]},
    )

    # then they are sent to verify first, and nothing is reset
    assert response.status_code == 302
    assert response.url == "/accounts/mfa/verify/"
    assert TOTPDevice.objects.filter(user=operator).exists()
    assert not SecondFactorReset.objects.exists()


def test_a_customer_turns_the_second_factor_off_with_a_code(client):
    customer = UserFactory()
    device = enrolled(customer)
    client.force_login(customer)
    assert "Turn off" in client.get("/accounts/mfa/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    now = timezone.now()
    with time_machine.travel(now, tick=False):
        assert client.post("/accounts/mfa/", {"code": "000000"}).status_code == 400
        # a wrong code is throttled here too
        assert client.post("/accounts/mfa/", {"code": code_for(device)}).status_code == 400
    assert TOTPDevice.objects.filter(user=customer).exists()

    with time_machine.travel(now + timedelta(seconds=2), tick=False):
        done = client.post("/accounts/mfa/", {"code": code_for(device)})
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=customer).exists()
    client.post("/accounts/logout/")
    assert log_in_with_password(client, customer.email).status_code == 200


def test_staff_cannot_turn_the_second_factor_off(client):
    operator = OperatorUserFactory()
    client.force_login(operator)
    device = TOTPDevice.objects.get(user=operator)

    page = client.get("/accounts/mfa/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    response = client.post("/accounts/mfa/", {"code": code_for(device)})

    assert "Turn off" not in page
    assert response.status_code == 400
    assert TOTPDevice.objects.filter(user=operator).exists()
