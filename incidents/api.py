"""The check-in endpoint a site's own equipment calls over the satellite link."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from incidents.models import CheckIn
from incidents.services import record_check_in, site_for_token


class CheckInInput(serializers.Serializer):
    mail_ok = serializers.BooleanField(required=False, allow_null=True, default=None)
    equipment = serializers.ChoiceField(
        choices=CheckIn.Equipment.choices, required=False, default=CheckIn.Equipment.UNKNOWN
    )


class CheckInThrottle(AnonRateThrottle):
    rate = "30/minute"  # a site calls once a day or so; guessing tokens needs far more


class SiteCheckInView(APIView):
    """``POST`` with ``Authorization: SiteToken <token>``: the call itself shows that the
    web works over the line. A wrong or revoked token is refused (403)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [CheckInThrottle]

    @extend_schema(
        request=CheckInInput,
        responses={201: None},
        parameters=[OpenApiParameter("Authorization", str, OpenApiParameter.HEADER, required=True)],
    )
    def post(self, request):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        site = site_for_token(token.strip()) if scheme == "SiteToken" and token else None
        if site is None:
            return Response(
                {"detail": "Unknown or revoked site token."}, status=status.HTTP_403_FORBIDDEN
            )
        data = CheckInInput(data=request.data)
        data.is_valid(raise_exception=True)
        check_in = record_check_in(
            site=site,
            web_ok=True,
            source=CheckIn.Source.SITE_LINK,
            now=timezone.now(),
            **data.validated_data,
        )
        return Response(
            {"site": site.name, "checked_at": check_in.checked_at}, status=status.HTTP_201_CREATED
        )
