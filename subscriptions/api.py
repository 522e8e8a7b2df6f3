"""Customer API for subscriptions: read-only, scoped to the caller's organisation."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from subscriptions import selectors, services
from subscriptions.invoice_pdf import render_invoice_pdf
from subscriptions.models import Invoice, InvoiceLine, Plan, Quote, Site, Subscription
from subscriptions.selectors import subscriptions_for_customer
from support.access import IsCustomerUser


class PlanOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["name", "normal_kbps", "upgraded_kbps"]


class SiteOutputSerializer(serializers.ModelSerializer):
    prefecture_name = serializers.CharField(source="get_prefecture_display")

    class Meta:
        model = Site
        fields = ["id", "name", "prefecture", "prefecture_name", "address", "contact_phone"]


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    site = SiteOutputSerializer()
    plan = PlanOutputSerializer()
    state = serializers.SerializerMethodField()
    days_left = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id",
            "contract_number",
            "site",
            "plan",
            "service_start",
            "term_end",
            "status",
            "state",
            "days_left",
            "extended_until",
            "last_day",
            "static_ip",
        ]

    def get_state(self, obj: Subscription) -> str:
        return obj.state_on(timezone.localdate())

    def get_days_left(self, obj: Subscription) -> int:
        return obj.days_left(timezone.localdate())


class SubscriptionViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's organisation's subscriptions; another organisation's id is a 404."""

    serializer_class = SubscriptionOutputSerializer
    permission_classes = [IsCustomerUser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation, no real user
            return Subscription.objects.none()
        return subscriptions_for_customer(customer_id=self.request.user.customer_id).order_by("pk")


class QuoteOutputSerializer(serializers.ModelSerializer):
    offer = serializers.CharField(source="offer.name")

    class Meta:
        model = Quote
        fields = [
            "id",
            "subscription",
            "offer",
            "first_day",
            "last_day",
            "months",
            "days",
            "service_yen",
            "static_ip_yen",
            "tax_rate_percent",
            "tax_yen",
            "total_yen",
            "created_at",
        ]


class QuoteInputSerializer(serializers.Serializer):
    subscription = serializers.IntegerField()


class InvoiceLineOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = InvoiceLine
        fields = ["description", "amount_yen", "tax_rate_percent"]


class InvoiceOutputSerializer(serializers.ModelSerializer):
    number = serializers.CharField(source="display_number")
    lines = InvoiceLineOutputSerializer(many=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "kind",
            "status",
            "subscription",
            "issued_on",
            "due_on",
            "extends_until",
            "issuer_name",
            "issuer_registration_number",
            "lines",
            "subtotal_yen",
            "tax_rate_percent",
            "tax_yen",
            "total_yen",
            "paid_at",
        ]


class InvoiceViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's organisation's invoices and credit notes; ``pdf`` downloads one."""

    serializer_class = InvoiceOutputSerializer
    permission_classes = [IsCustomerUser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invoice.objects.none()
        return (
            selectors.invoices_for_customer(customer_id=self.request.user.customer_id)
            .prefetch_related("lines")
            .order_by("-number")
        )

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None, format=None):
        invoice = self.get_object()
        response = HttpResponse(
            render_invoice_pdf(invoice, language=request.LANGUAGE_CODE),
            content_type="application/pdf",
        )
        response["Content-Disposition"] = f'attachment; filename="{invoice.display_number}.pdf"'
        return response


class QuoteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Quotes for extending the caller's subscriptions; accepting one issues the invoice."""

    serializer_class = QuoteOutputSerializer
    permission_classes = [IsCustomerUser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Quote.objects.none()
        return selectors.quotes_for_customer(customer_id=self.request.user.customer_id).order_by(
            "-pk"
        )

    @extend_schema(request=QuoteInputSerializer, responses={201: QuoteOutputSerializer})
    def create(self, request):
        data = QuoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = get_object_or_404(
            selectors.subscriptions_for_customer(customer_id=request.user.customer_id),
            pk=data.validated_data["subscription"],
        )
        quote = services.quote_extension(
            subscription=subscription, by=request.user, now=timezone.now()
        )
        return Response(QuoteOutputSerializer(quote).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: InvoiceOutputSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None, format=None):
        invoice = services.accept_quote(
            quote=self.get_object(), by=request.user, now=timezone.now()
        )
        return Response(InvoiceOutputSerializer(invoice).data, status=status.HTTP_201_CREATED)
