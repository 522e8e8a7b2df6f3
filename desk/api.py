"""Inquiry API: a customer's questions to support, and their conversations.

Staff-only notes never leave the server: every read filters them out in the query.
"""

from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from desk.models import Inquiry, InquiryMessage
from desk.services import customer_follow_up, open_inquiry
from subscriptions.models import Site
from support.access import IsCustomerUser
from support.admin import MAX_ID
from support.channels import Channel


@extend_schema_field(
    {"type": "string", "enum": Inquiry.Status.values}, component_name="InquiryStatusEnum"
)
class InquiryStatusField(serializers.CharField):
    """The status as a named enum of its own. (Several models have a field called
    "status"; without a name of its own the schema's enum would get a hashed one.)"""


class InquiryMessageOutput(serializers.ModelSerializer):
    from_support = serializers.BooleanField(source="from_staff")

    class Meta:
        model = InquiryMessage
        fields = ["id", "from_support", "body", "created_at"]


class InquiryOutput(serializers.ModelSerializer):
    status = InquiryStatusField(read_only=True)

    class Meta:
        model = Inquiry
        fields = ["id", "subject", "site", "channel", "received_at", "status"]


class InquiryDetailOutput(InquiryOutput):
    messages = InquiryMessageOutput(many=True, read_only=True, source="customer_messages")

    class Meta(InquiryOutput.Meta):
        fields = [*InquiryOutput.Meta.fields, "messages"]


class InquiryInput(serializers.Serializer):
    subject = serializers.CharField(min_length=1, max_length=200)
    body = serializers.CharField(min_length=1, max_length=5000)
    site = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, required=False, allow_null=True, default=None
    )


class FollowUpInput(serializers.Serializer):
    body = serializers.CharField(min_length=1, max_length=5000)


class InquiryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's organisation's inquiries to support."""

    permission_classes = [IsCustomerUser]

    def get_serializer_class(self):
        return InquiryOutput if self.action == "list" else InquiryDetailOutput

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Inquiry.objects.none()
        inquiries = Inquiry.objects.for_customer(self.request.user.customer_id)
        if self.action == "list":
            return inquiries
        return inquiries.prefetch_related(
            Prefetch(
                "messages",
                queryset=InquiryMessage.objects.filter(internal=False),
                to_attr="customer_messages",
            )
        )

    @extend_schema(request=InquiryInput, responses={201: InquiryDetailOutput})
    def create(self, request):
        data = InquiryInput(data=request.data)
        data.is_valid(raise_exception=True)
        site = None
        if data.validated_data["site"] is not None:
            site = Site.objects.filter(
                customer_id=request.user.customer_id, pk=data.validated_data["site"]
            ).first()
            if site is None:
                raise serializers.ValidationError(
                    {"site": [_("Choose only your own organisation's sites.")]}
                )
        inquiry = open_inquiry(
            customer=request.user.customer,
            subject=data.validated_data["subject"],
            body=data.validated_data["body"],
            site=site,
            channel=Channel.API,
            by=request.user,
            now=timezone.now(),
        )
        return Response(
            InquiryDetailOutput(self.get_queryset().get(pk=inquiry.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=FollowUpInput, responses={201: InquiryDetailOutput})
    @action(detail=True, methods=["post"], url_path="follow-up")
    def follow_up(self, request, pk=None, format=None):
        inquiry = self.get_object()
        data = FollowUpInput(data=request.data)
        data.is_valid(raise_exception=True)
        customer_follow_up(
            inquiry=inquiry, by=request.user, body=data.validated_data["body"], now=timezone.now()
        )
        return Response(
            InquiryDetailOutput(self.get_queryset().get(pk=inquiry.pk)).data,
            status=status.HTTP_201_CREATED,
        )
