"""The check-in endpoint a site's own equipment calls over the satellite link."""

from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_standardized_errors.openapi_serializers import ErrorResponse403Serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from incidents.models import CheckIn, DamageReport, Disaster
from incidents.services import (
    add_damage_photo,
    current_outage,
    damage_progress,
    record_check_in,
    report_damage,
    site_for_token,
)
from subscriptions.models import Site
from support.access import CHOICE_ERRORS, IsCustomerUser
from support.channels import Channel


class CheckInInput(serializers.Serializer):
    mail_ok = serializers.BooleanField(required=False, allow_null=True, default=None)
    equipment = serializers.ChoiceField(
        choices=CheckIn.Equipment.choices,
        required=False,
        default=CheckIn.Equipment.UNKNOWN,
        error_messages=CHOICE_ERRORS,
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
        responses={201: None, 403: ErrorResponse403Serializer},
        parameters=[OpenApiParameter("Authorization", str, OpenApiParameter.HEADER, required=True)],
    )
    def post(self, request):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        site = site_for_token(token.strip()) if scheme == "SiteToken" and token else None
        if site is None:
            raise PermissionDenied("Unknown or revoked site token.")
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


class StatusView(APIView):
    """Public service status: the ground-station outage in progress and active disasters."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: None})
    def get(self, request):
        outage = current_outage()
        return Response(
            {
                "outage": None
                if outage is None
                else {
                    "cause": outage.cause,
                    "since": outage.started_at,
                    "message": outage.message,
                },
                "disasters": [
                    {
                        "title": d.title,
                        "since": d.declared_at,
                        "nationwide": d.nationwide,
                        "prefectures": d.prefectures,
                        "message": d.message,
                        "message_en": d.message_en,
                    }
                    for d in Disaster.objects.active()
                ],
            }
        )


class DamageReportOutput(serializers.ModelSerializer):
    site = serializers.CharField(source="site.name")
    progress = serializers.SerializerMethodField()
    photos = serializers.SerializerMethodField()

    class Meta:
        model = DamageReport
        fields = ["id", "site", "description", "received_at", "progress", "photos"]

    def get_progress(self, obj) -> str:
        return damage_progress(obj)

    def get_photos(self, obj) -> list[str]:
        return [reverse("incidents:damage-photo", args=[photo.pk]) for photo in obj.photos.all()]


class DamageReportInput(serializers.Serializer):
    site = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    description = serializers.CharField(min_length=1, max_length=4000)
    photos = serializers.ListField(child=serializers.FileField(), required=False, default=list)


class DamagePhotoInput(serializers.Serializer):
    photo = serializers.FileField()


class DamageReportViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's organisation's damage reports; create one with photos (multipart, all
    or nothing), or create it without and add each photo on its own (photos/), as the
    portal's page does over the satellite line."""

    permission_classes = [IsCustomerUser]
    serializer_class = DamageReportOutput
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DamageReport.objects.none()
        return (
            DamageReport.objects.filter(site__customer_id=self.request.user.customer_id)
            .select_related("site")
            .prefetch_related("photos", "visits")
        )

    @extend_schema(
        request={"multipart/form-data": DamageReportInput}, responses={201: DamageReportOutput}
    )
    def create(self, request):
        data = DamageReportInput(data=request.data)
        data.is_valid(raise_exception=True)
        site = Site.objects.filter(
            pk=data.validated_data["site"], customer_id=request.user.customer_id
        ).first()
        if site is None:
            raise serializers.ValidationError({"site": [_("Choose one of your own sites.")]})
        report = report_damage(
            site=site,
            description=data.validated_data["description"],
            photos=data.validated_data["photos"],
            channel=Channel.API,
            by=request.user,
            now=timezone.now(),
        )
        return Response(DamageReportOutput(report).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"multipart/form-data": DamagePhotoInput}, responses={201: DamageReportOutput}
    )
    @action(detail=True, methods=["post"], url_path="photos")
    def add_photo(self, request, pk=None):
        report = self.get_object()  # another organisation's report: 404
        data = DamagePhotoInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            add_damage_photo(report=report, photo=data.validated_data["photo"])
        except ValidationError as error:
            raise serializers.ValidationError({"photo": error.messages}) from error
        report = self.get_queryset().get(pk=report.pk)
        return Response(DamageReportOutput(report).data, status=status.HTTP_201_CREATED)
