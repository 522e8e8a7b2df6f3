"""Upgrade API: customers' requests, grants and answers; operators' disasters."""

import uuid

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from subscriptions.prefectures import Prefecture
from support.access import CHOICE_ERRORS, IsCustomerUser
from support.channels import Channel
from upgrades import selectors
from upgrades.forms import MAX_ID
from upgrades.models import BlanketUpgrade, SpeedGrant, UpgradeRequest
from upgrades.services.blanket import (
    declare_disaster,
    end_disaster,
    extend_deadline,
    respond_to_grants,
)
from upgrades.services.requests import cancel_upgrade_request, request_upgrade


class IsOperator(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("accounts.access_operator_dashboard")


class UpgradeRequestOutput(serializers.ModelSerializer):
    sites = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = UpgradeRequest
        fields = ["id", "sites", "reason", "note", "channel", "received_at", "status"]


class UpgradeRequestInput(serializers.Serializer):
    sites = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID), allow_empty=False
    )
    reason = serializers.ChoiceField(
        choices=UpgradeRequest.Reason.choices, error_messages=CHOICE_ERRORS
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class UpgradeRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The caller's organisation's upgrade requests."""

    permission_classes = [IsCustomerUser]
    serializer_class = UpgradeRequestOutput

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return UpgradeRequest.objects.none()
        return selectors.requests_for_customer(customer_id=self.request.user.customer_id)

    @extend_schema(request=UpgradeRequestInput, responses={201: UpgradeRequestOutput})
    def create(self, request):
        data = UpgradeRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        sites = list(request.user.customer.sites.filter(pk__in=data.validated_data["sites"]))
        if len(sites) != len(set(data.validated_data["sites"])):
            raise serializers.ValidationError(
                {"sites": [_("Choose only your own organisation's sites.")]}
            )
        upgrade_request = request_upgrade(
            customer=request.user.customer,
            sites=sites,
            reason=data.validated_data["reason"],
            note=data.validated_data["note"],
            channel=Channel.API,
            requested_by=request.user,
            now=timezone.now(),
        )
        return Response(UpgradeRequestOutput(upgrade_request).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=UpgradeRequestOutput)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None, format=None):
        upgrade_request = self.get_object()
        cancel_upgrade_request(upgrade_request=upgrade_request, by=request.user, now=timezone.now())
        return Response(UpgradeRequestOutput(upgrade_request).data)


class GrantOutput(serializers.ModelSerializer):
    subscription = serializers.CharField(source="subscription.contract_number")
    site = serializers.CharField(source="subscription.site.name")
    deadline = serializers.DateTimeField(source="blanket_upgrade.deadline", default=None)
    disaster = serializers.CharField(source="blanket_upgrade.disaster.title", default=None)
    # The line's own speed now: a declined or reverted grant's line may still be kept
    # upgraded by another grant (a request, another disaster).
    line_upgraded = serializers.BooleanField(
        source="subscription.speed.desired_upgraded",
        read_only=True,
        help_text="Whether the line is upgraded now, by this grant or another one.",
    )

    class Meta:
        model = SpeedGrant
        fields = [
            "id",
            "subscription",
            "site",
            "source",
            "state",
            "starts_at",
            "ended_at",
            "deadline",
            "disaster",
            "upgrade_request",
            "line_upgraded",
        ]


class EndDisasterInput(serializers.Serializer):
    message = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=5000,
        help_text="The closing message to customers, shown in the 'disaster ended' e-mail.",
    )


class AnswerInput(serializers.Serializer):
    keep = serializers.BooleanField(help_text="true: keep the upgrade; false: return to normal")
    grants = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        help_text="Grant ids to answer; omitted: every pending grant of the organisation.",
    )


class GrantViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Upgrades of the caller's lines; pending ones wait for an answer before the deadline."""

    permission_classes = [IsCustomerUser]
    serializer_class = GrantOutput

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SpeedGrant.objects.none()
        return selectors.grants_for_customer(customer_id=self.request.user.customer_id)

    @extend_schema(request=AnswerInput, responses=GrantOutput(many=True))
    @action(detail=False, methods=["post"])
    def answer(self, request, format=None):
        data = AnswerInput(data=request.data)
        data.is_valid(raise_exception=True)
        grants = SpeedGrant.objects.for_customer(request.user.customer_id)
        if "grants" in data.validated_data:
            grants = grants.filter(pk__in=data.validated_data["grants"])
        answered = respond_to_grants(
            grants=grants,
            keep=data.validated_data["keep"],
            by=request.user,
            channel=Channel.API,
            now=timezone.now(),
        )
        return Response(GrantOutput(answered, many=True).data)


class DisasterOutput(serializers.ModelSerializer):
    title = serializers.CharField(source="disaster.title")
    nationwide = serializers.BooleanField(source="disaster.nationwide")
    prefectures = serializers.ListField(
        source="disaster.prefectures", child=serializers.CharField()
    )
    declared_at = serializers.DateTimeField(source="disaster.declared_at")
    ended_at = serializers.DateTimeField(source="disaster.ended_at", allow_null=True)
    stage = serializers.SerializerMethodField(
        help_text="status, or deadline_passed once an active upgrade's deadline is over"
    )
    stage_display = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = BlanketUpgrade
        fields = [
            "id",
            "title",
            "nationwide",
            "prefectures",
            "declared_at",
            "deadline",
            "status",
            "stage",
            "stage_display",
            "ended_at",
            "progress",
        ]

    def get_stage(self, obj) -> str:
        return obj.stage_on(timezone.now()).value

    def get_stage_display(self, obj) -> str:
        return str(obj.stage_on(timezone.now()).label)

    def get_progress(self, obj) -> dict:
        return selectors.blanket_progress(blanket=obj).as_dict()


class DisasterListOutput(DisasterOutput):
    """The list leaves out progress: each disaster's counts cost a pass over its grants."""

    class Meta(DisasterOutput.Meta):
        fields = [f for f in DisasterOutput.Meta.fields if f != "progress"]


class DeclareInput(serializers.Serializer):
    title = serializers.CharField(min_length=1, max_length=200)
    nationwide = serializers.BooleanField(default=False)
    prefectures = serializers.ListField(
        child=serializers.ChoiceField(choices=Prefecture.choices, error_messages=CHOICE_ERRORS),
        required=False,
        default=list,
    )
    window_days = serializers.IntegerField(min_value=1, max_value=30, required=False)
    message = serializers.CharField(required=False, allow_blank=True, default="")
    message_en = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="The message in English, shown to customers reading in English.",
    )
    idempotency_key = serializers.CharField(
        min_length=1,
        max_length=64,
        required=False,
        help_text="Send the same key again to retry safely: the disaster is declared once.",
    )
    confirm_overlap = serializers.BooleanField(
        default=False,
        help_text="Declare even though an active disaster already covers part of the scope "
        "(without it such a declaration is refused with a field error).",
    )


class ExtendInput(serializers.Serializer):
    deadline = serializers.DateTimeField()

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except (OverflowError, ValueError) as error:  # e.g. year 1 in Japan time
            raise serializers.ValidationError({"deadline": ["Not a usable date."]}) from error


class DisasterViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Operators: declare, extend and end wide-scale disasters; read their progress."""

    permission_classes = [IsOperator]
    queryset = BlanketUpgrade.objects.select_related("disaster").order_by("-created_at")

    def get_serializer_class(self):
        return DisasterListOutput if self.action == "list" else DisasterOutput

    @extend_schema(request=DeclareInput, responses={201: DisasterOutput})
    def create(self, request):
        data = DeclareInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        blanket = declare_disaster(
            operator=request.user,
            idempotency_key=values.pop("idempotency_key", None) or uuid.uuid4().hex,
            now=timezone.now(),
            **values,
        )
        return Response(DisasterOutput(blanket).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ExtendInput, responses=DisasterOutput)
    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None, format=None):
        data = ExtendInput(data=request.data)
        data.is_valid(raise_exception=True)
        blanket = extend_deadline(
            blanket=self.get_object(),
            new_deadline=data.validated_data["deadline"],
            operator=request.user,
            now=timezone.now(),
        )
        return Response(DisasterOutput(blanket).data)

    @extend_schema(request=EndDisasterInput, responses=DisasterOutput)
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None, format=None):
        blanket = self.get_object()
        data = EndDisasterInput(data=request.data)
        data.is_valid(raise_exception=True)
        end_disaster(
            disaster=blanket.disaster,
            operator=request.user,
            now=timezone.now(),
            message=data.validated_data["message"],
        )
        blanket.refresh_from_db()
        return Response(DisasterOutput(blanket).data)
