"""The phone system's endpoint (CTI): ``POST /api/v1/cti/events/``, one call event each.

The field names are those of the common generic CTI interfaces (Zammad's "generic CTI"):
``event`` (newCall, answer, hangup), ``from``, ``to``, ``direction`` (in, out),
``callId``, ``user`` (who answered), ``cause`` and ``answeringNumber``. The phone system
proves itself with ``Authorization: Token <CTI_TOKEN>``; the README has the contract.
"""

import hmac

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from drf_standardized_errors.openapi_serializers import ErrorResponse403Serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from desk.calls import record_call_event
from desk.models import Call, CallEvent
from support.access import CHOICE_ERRORS


def _encodable(value: str) -> None:
    # A lone surrogate ("\ud800" in JSON) cannot be stored: a field error, not a 500.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError(_("Enter text without invalid characters.")) from None


def _text(max_length: int, **kwargs) -> serializers.CharField:
    return serializers.CharField(
        max_length=max_length,
        validators=[_encodable],
        trim_whitespace=True,
        **{"required": False, "allow_blank": True, "default": "", **kwargs},
    )


class CallEventInput(serializers.Serializer):
    event = serializers.ChoiceField(choices=CallEvent.Event.choices, error_messages=CHOICE_ERRORS)
    callId = _text(100, required=True, allow_blank=False, default=serializers.empty)
    from_ = _text(100, help_text="The caller's number as dialled; 'anonymous' when withheld.")
    to = _text(100, help_text="The number called.")
    direction = serializers.ChoiceField(
        choices=Call.Direction.choices,
        required=False,
        default=Call.Direction.IN,
        error_messages=CHOICE_ERRORS,
    )
    user = serializers.ListField(
        child=_text(150),
        required=False,
        default=list,
        max_length=20,
        help_text="answer: who took the call (staff e-mail addresses or extensions).",
    )
    cause = _text(50, help_text="hangup: e.g. normalClearing, busy, cancel, noAnswer.")
    answeringNumber = _text(100)

    def get_fields(self):
        # "from" is the common CTI name and a Python keyword.
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class CallEventOutput(serializers.Serializer):
    call = serializers.IntegerField(help_text="The call's number in the desk.")
    status = serializers.ChoiceField(choices=Call.Status.choices)
    customer = serializers.IntegerField(allow_null=True, help_text="null: unknown caller.")
    recorded = serializers.BooleanField(help_text="false: this event was recorded before.")


def cti_token_ok(header: str) -> bool:
    """``Token <CTI_TOKEN>``, compared in constant time; never with CTI switched off."""
    expected = settings.CTI_TOKEN
    scheme, _space, token = (header or "").partition(" ")
    if not expected or scheme != "Token" or not token:
        return False
    return hmac.compare_digest(token.strip().encode(), expected.encode())


def _form_lists(data):
    # Form-encoded, phone systems send the list as user[]=a&user[]=b (PHP's style).
    if hasattr(data, "getlist") and "user[]" in data:
        data = data.copy()
        data.setlist("user", data.getlist("user[]"))
    return data


class CallEventView(APIView):
    """One event of a phone call, posted by the phone system (PBX)."""

    # The phone system is no user: no login, its own token (and 403 without it).
    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="cti_event",
        summary="A phone call's event from the phone system (CTI)",
        description=(
            "newCall when a call starts ringing, answer when someone takes it, hangup when "
            "it ends. The same event of the same callId again changes nothing (recorded: "
            "false). Events may come in any order. Authorization: Token <CTI_TOKEN>."
        ),
        request=CallEventInput,
        responses={200: CallEventOutput, 403: ErrorResponse403Serializer},
        parameters=[
            OpenApiParameter(
                "Authorization",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="Token <CTI_TOKEN>",
            )
        ],
        examples=[
            OpenApiExample(
                "A new incoming call",
                request_only=True,
                value={
                    "event": "newCall",
                    "from": "03-6279-0933",
                    "to": "0362790933",
                    "direction": "in",
                    "callId": "4a5c2f0e-1",
                },
            )
        ],
        tags=["cti"],
    )
    def post(self, request):
        if not cti_token_ok(request.headers.get("Authorization", "")):
            raise PermissionDenied(_("Unknown CTI token, or CTI is switched off."))
        data = CallEventInput(data=_form_lists(request.data))
        data.is_valid(raise_exception=True)
        values = data.validated_data
        call, recorded = record_call_event(
            event=values["event"],
            call_id=values["callId"],
            from_number=values["from"],
            to_number=values["to"],
            direction=values["direction"],
            users=values["user"],
            cause=values["cause"],
            answering_number=values["answeringNumber"],
            payload={key: value for key, value in values.items()},
            now=timezone.now(),
        )
        return Response(
            {
                "call": call.pk,
                "status": call.status,
                "customer": call.customer_id,
                "recorded": recorded,
            }
        )
