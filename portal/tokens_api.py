"""The API's own logins: get a token, list yours, revoke one or all (log out everywhere).

Tokens are django-rest-knox's, kept as ``ApiToken`` (portal/accounts/tokens.py); every
other API view checks them with ``knox.auth.TokenAuthentication``.
"""

import math
from datetime import timedelta

from axes.helpers import get_cool_off
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_standardized_errors.openapi_serializers import (
    ErrorResponse403Serializer,
    ErrorResponse429Serializer,
    ValidationErrorResponseSerializer,
)
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts import mfa
from portal.accounts.models import ApiToken
from portal.accounts.tokens import (
    issue_api_token,
    live_api_tokens,
    revoke_all_api_tokens,
    revoke_api_token,
)


class LockedOut(exceptions.APIException):
    """django-axes locked this account for this address: 429, and when to come back.

    Each attempt during a lockout starts the cool-off again, so the wait is all of it.
    """

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"

    def __init__(self, *, wait: timedelta):
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        super().__init__(
            ngettext(
                "Too many failed log-ins for this account from this address: it is locked. "
                "Try again in %(minutes)d minute.",
                "Too many failed log-ins for this account from this address: it is locked. "
                "Try again in %(minutes)d minutes.",
                minutes,
            )
            % {"minutes": minutes}
        )
        self.wait = math.ceil(wait.total_seconds())  # DRF's handler sends it as Retry-After


class ObtainTokenSerializer(serializers.Serializer):
    username = serializers.CharField(label=_("E-mail address"), write_only=True)
    password = serializers.CharField(
        label=_("Password"),
        write_only=True,
        trim_whitespace=False,
        style={"input_type": "password"},
    )
    client = serializers.CharField(
        label=_("Client"),
        help_text=_("Optional: the device or program that will use the token."),
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
    )
    code = serializers.CharField(
        label=_("Second-factor code"),
        help_text=_(
            "For an account with a second factor: a current code of the authenticator app "
            "or a recovery code."
        ),
        write_only=True,
        required=False,
        default="",
    )

    def validate(self, attrs):
        request = self.context["request"]
        # Through Django's authenticate, so django-axes counts failures and locks out.
        user = authenticate(request=request, username=attrs["username"], password=attrs["password"])
        if user is None:
            if getattr(request, "axes_locked_out", False):
                raise LockedOut(wait=get_cool_off(request) or timedelta(minutes=1))
            raise serializers.ValidationError(
                _("Unable to log in with provided credentials."), code="authorization"
            )
        if mfa.must_enrol(user):
            # A token got with the password alone would skip the staff's second factor.
            raise exceptions.PermissionDenied(
                _("Staff accounts cannot get API tokens; use the portal's staff pages.")
            )
        if mfa.has_second_factor(user) and not mfa.check_code(user=user, token=attrs["code"]):
            raise serializers.ValidationError(
                {"code": _("This account uses a second factor: send a current code.")}
            )
        attrs["user"] = user
        return attrs


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text=_("The secret: send it as 'Authorization: Token …'."))
    id = serializers.IntegerField()
    client = serializers.CharField()
    expiry = serializers.DateTimeField()


class ApiTokenSerializer(serializers.ModelSerializer):
    current = serializers.SerializerMethodField(
        help_text=_("Whether this request was made with this token.")
    )

    class Meta:
        model = ApiToken
        fields = ["id", "client", "created", "expiry", "current"]

    def get_current(self, token: ApiToken) -> bool:
        return self.context["request"].auth == token


class ObtainTokenView(APIView):
    """Log in with e-mail and password: a new token for this client, valid for a while."""

    # Open to anyone, and no credential is read: a stale token must not stop a login.
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=ObtainTokenSerializer,
        responses={
            200: IssuedTokenSerializer,
            400: OpenApiResponse(
                response=ValidationErrorResponseSerializer,
                description=_("Wrong e-mail or password."),
            ),
            403: OpenApiResponse(
                response=ErrorResponse403Serializer,
                description=_(
                    "Staff accounts cannot get API tokens; use the portal's staff pages."
                ),
            ),
            429: OpenApiResponse(
                response=ErrorResponse429Serializer,
                description=_("Too many failed log-ins: locked for now."),
            ),
        },
        auth=[],
    )
    def post(self, request):
        serializer = ObtainTokenSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        try:
            token, secret = issue_api_token(user=user, client=serializer.validated_data["client"])
        except DjangoValidationError as error:
            raise serializers.ValidationError({"non_field_errors": error.messages}) from error
        # A login like the form's: django-axes forgets the earlier failures, and
        # last_login moves.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        data = {"token": secret, "id": token.pk, "client": token.client, "expiry": token.expiry}
        return Response(IssuedTokenSerializer(data).data)


class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's own API tokens: list them, revoke one, or revoke all."""

    serializer_class = ApiTokenSerializer
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return live_api_tokens(user=self.request.user)

    def list(self, request, *args, **kwargs):
        """The caller's tokens that still work, newest first ("current": this one)."""
        return super().list(request, *args, **kwargs)

    def destroy(self, request, *args, **kwargs):
        """Revoke one of the caller's tokens: the client that uses it must log in again."""
        if not revoke_api_token(user=request.user, token_id=self.kwargs["pk"]):
            raise exceptions.NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None})
    @action(detail=False, methods=["post"], url_path="revoke-all")
    def revoke_all(self, request):
        """Log out everywhere: every token of the caller stops working, this one too."""
        revoke_all_api_tokens(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
