"""The REST API's shared pieces: routes and the one exception handler."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import exception_handler as drf_exception_handler

from incidents.api import DamageReportViewSet
from portal.tokens_api import ApiTokenViewSet
from subscriptions.api import InvoiceViewSet, QuoteViewSet, SubscriptionViewSet
from support.api import InquiryViewSet
from upgrades.api import DisasterViewSet, GrantViewSet, UpgradeRequestViewSet

router = DefaultRouter()
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("quotes", QuoteViewSet, basename="quote")
router.register("damage-reports", DamageReportViewSet, basename="damage-report")
router.register("invoices", InvoiceViewSet, basename="invoice")
router.register("upgrade-requests", UpgradeRequestViewSet, basename="upgrade-request")
router.register("grants", GrantViewSet, basename="grant")
router.register("operator/disasters", DisasterViewSet, basename="disaster")
router.register("inquiries", InquiryViewSet, basename="inquiry")
router.register("auth/tokens", ApiTokenViewSet, basename="api-token")


def exception_handler(exc, context):
    """Domain rules broken by a request are the client's error: HTTP 400, by field."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
