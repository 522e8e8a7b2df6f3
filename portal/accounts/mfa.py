"""The second factor (django-otp): who needs one, enrolment, verification, reset.

Staff (support, operators, superusers; every user outside a customer organisation) must
have a TOTP authenticator and use it at every login before any page opens. Customers may
opt in; once they have, their logins need it too. Recovery codes (django-otp's static
tokens) stand in for a lost phone, each once. Both kinds of device are throttled by
django-otp: each wrong code doubles the wait before the device accepts the next one.
"""

import base64
import io

import django_otp
import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import SecondFactorReset, User

# Set at login: whether this session's user must pass a second factor. Staff are known
# by their account; for customers it saves two device queries on every page.
SESSION_REQUIRED_KEY = "mfa_required"


class SecondFactorError(Exception):
    """A second-factor action the rules refuse."""


def must_enrol(user: User) -> bool:
    """Staff cannot work without a second factor: everyone outside a customer organisation."""
    return bool(user.is_staff or user.is_superuser or user.customer_id is None)


def has_second_factor(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def second_factor_required(request: HttpRequest) -> bool:
    user = request.user
    if must_enrol(user):
        return True
    required = request.session.get(SESSION_REQUIRED_KEY)
    if required is None:  # a session from before the second factor existed
        required = request.session[SESSION_REQUIRED_KEY] = has_second_factor(user)
    return required


@receiver(user_logged_in, dispatch_uid="portal.accounts.mfa.remember_requirement")
def _remember_requirement(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_REQUIRED_KEY] = must_enrol(user) or has_second_factor(user)


def pending_authenticator(*, user: User) -> TOTPDevice:
    """The unconfirmed authenticator a person is setting up (made once, kept on reload)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    return device


def manual_entry_key(device: TOTPDevice) -> str:
    """The secret as authenticator apps take it typed in: base32, in groups of four."""
    key = base64.b32encode(device.bin_key).decode()
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


def qr_code_data_uri(device: TOTPDevice) -> str:
    """The enrolment QR code as an inline SVG (no JavaScript, no request of its own)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def _verify(device, token: str) -> bool:
    # Locked and re-read, so two requests cannot both use one code or dodge the throttle.
    with transaction.atomic():
        device = type(device).objects.select_for_update().get(pk=device.pk)
        return device.verify_token(token)


def _new_recovery_codes(*, user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.MFA_RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def confirm_authenticator(*, request: HttpRequest, token: str) -> list[str]:
    """The first code from the new authenticator confirms it and verifies this session.

    Returns the recovery codes, shown once. Replaces any earlier recovery codes.
    """
    user = request.user
    if has_second_factor(user):
        raise SecondFactorError("already enrolled")
    device = pending_authenticator(user=user)
    if not _verify(device, token):
        raise SecondFactorError("wrong code")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
        codes = _new_recovery_codes(user=user)
    _log_in_second_factor(request, device)
    return codes


def verify_second_factor(*, request: HttpRequest, token: str) -> bool:
    """A code from the authenticator (six digits) or a recovery code, which is used up.

    Raises ``SecondFactorError`` for a wrong code.
    """
    token = "".join(token.split()).lower()
    user = request.user
    if token.isdigit() and len(token) == 6:
        devices = TOTPDevice.objects.filter(user=user, confirmed=True)
    else:
        devices = StaticDevice.objects.filter(user=user, confirmed=True)
    for device in devices:
        if _verify(device, token):
            _log_in_second_factor(request, device)
            return True
    raise SecondFactorError("wrong code")


def check_code(*, user: User, token: str) -> bool:
    """A current authenticator code or a recovery code (used up) of ``user``, for a client
    without a session: the API's token login. Throttled like the verify page."""
    token = "".join(token.split()).lower()
    model = TOTPDevice if token.isdigit() and len(token) == 6 else StaticDevice
    return any(_verify(device, token) for device in model.objects.filter(user=user, confirmed=True))


def _seconds_locked(device) -> int:
    allowed, data = device.verify_is_allowed()
    if allowed or not data or not data.get("locked_until"):
        return 0
    return int((data["locked_until"] - timezone.now()).total_seconds()) + 1


def seconds_to_wait(*, user: User) -> int:
    """How long the throttle still refuses codes (0 when a code may be tried)."""
    devices = [
        *TOTPDevice.objects.filter(user=user, confirmed=True),
        *StaticDevice.objects.filter(user=user, confirmed=True),
    ]
    return max((_seconds_locked(device) for device in devices), default=0)


def seconds_to_wait_for_pending(*, user: User) -> int:
    return _seconds_locked(pending_authenticator(user=user))


def _log_in_second_factor(request: HttpRequest, device) -> None:
    # A new session id for the stronger login, as for the password login.
    request.session.cycle_key()
    django_otp.login(request, device)
    request.session[SESSION_REQUIRED_KEY] = True


def remaining_recovery_codes(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user).count()


def regenerate_recovery_codes(*, user: User) -> list[str]:
    """New codes for a user with an authenticator; the old ones stop working."""
    if not has_second_factor(user):
        raise SecondFactorError("no authenticator")
    with transaction.atomic():
        return _new_recovery_codes(user=user)


def _remove_devices(*, user: User) -> int:
    removed = 0
    for model in (TOTPDevice, StaticDevice):
        devices = model.objects.filter(user=user)
        removed += devices.count()
        devices.delete()
    return removed


def turn_off_second_factor(*, request: HttpRequest, token: str) -> bool:
    """A customer who opted in may opt out, with a current code; staff may not."""
    user = request.user
    if must_enrol(user):
        raise SecondFactorError("staff keep their second factor")
    if not user.is_verified():
        raise SecondFactorError("not verified")
    # Outside a transaction of its own: a wrong code's throttle count must stay.
    verify_second_factor(request=request, token=token)
    with transaction.atomic():
        _remove_devices(user=user)
    request.session[SESSION_REQUIRED_KEY] = False
    return True


@transaction.atomic
def reset_second_factor(*, user: User, by: User) -> SecondFactorReset:
    """Remove a colleague's authenticator and recovery codes, recorded with who and when.

    The owner enrols again at their next page (their sessions lose the verification with
    the device). Only a holder of the reset permission may; the admin, where it is done,
    is itself behind a verified second factor, so nobody resets one without having
    passed their own.
    """
    if not by.has_perm("accounts.reset_second_factor"):
        raise SecondFactorError("not allowed")
    removed = _remove_devices(user=user)
    return SecondFactorReset.objects.create(user=user, reset_by=by, devices_removed=removed)
