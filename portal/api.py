"""The REST API's shared pieces: routes and the one exception handler.

Every error the API answers with has one shape (drf-standardized-errors)::

    {"type": "validation_error" | "client_error" | "server_error",
     "errors": [{"code": "...", "detail": "a message", "attr": "field or null"}]}

and the schema documents it for each operation's 4xx responses.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.defaults import page_not_found
from drf_standardized_errors.handler import ExceptionHandler
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.routers import DefaultRouter

from desk.api import InquiryViewSet
from incidents.api import DamageReportViewSet
from portal.tokens_api import ApiTokenViewSet
from subscriptions.api import InvoiceViewSet, QuoteViewSet, SubscriptionViewSet
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


class DomainExceptionHandler(ExceptionHandler):
    """Domain rules broken by a request are the client's error: HTTP 400, by field.

    Services raise Django's ValidationError; it becomes DRF's, so that it takes the
    same envelope (type "validation_error", one entry per field message) as a
    serializer's. Set as DRF_STANDARDIZED_ERRORS["EXCEPTION_HANDLER_CLASS"].
    """

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, DjangoValidationError):
            return serializers.ValidationError(serializers.as_serializer_error(exc))
        return super().convert_known_exceptions(exc)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable, e.g. required, invalid, min_value.")
    detail = serializers.CharField(help_text="The message for a person, in their language.")
    attr = serializers.CharField(
        allow_null=True, help_text="The field, dotted for nested ones (sites.0); null: the whole."
    )


class ErrorResponse400Serializer(serializers.Serializer):
    """400 on every operation: a field's value refused, a domain rule broken or a body
    that does not parse. One schema for all: the services' rules add codes and fields
    that the serializers alone cannot tell."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error"])
    errors = ErrorSerializer(many=True)


def not_found(request, exception=None):
    """Django's 404 (a URL no route matches) in the API's envelope under /api/, the
    page otherwise."""
    if request.path.startswith("/api/"):
        body = {
            "type": "client_error",
            "errors": [{"code": "not_found", "detail": str(NotFound.default_detail), "attr": None}],
        }
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)
