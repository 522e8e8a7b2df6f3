"""Customer pages: a subscription, its extension (quote, invoice) and the invoices."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import DetailView, ListView

from subscriptions import selectors
from subscriptions.invoice_pdf import render_invoice_pdf
from subscriptions.services import (
    accept_quote,
    extension_period,
    no_offer_message,
    open_offer,
    quote_extension,
)
from support.access import CustomerRequiredMixin


class SubscriptionDetailView(CustomerRequiredMixin, DetailView):
    template_name = "subscriptions/subscription_detail.html"
    context_object_name = "subscription"

    def get_queryset(self):
        return selectors.subscriptions_for_customer(customer_id=self.request.user.customer_id)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        today = timezone.localdate()
        subscription = self.object
        context["state"] = subscription.state_on(today)
        context["days_left"] = subscription.days_left(today)
        context["timeline"] = selectors.timeline(subscription, today=today)
        context["invoices"] = subscription.invoices.order_by("-number")
        offer = open_offer(today=today)
        context["offer"] = offer
        if offer is None:
            context["extension_note"] = no_offer_message(today=today)
        else:
            try:
                context["period"] = extension_period(
                    subscription=subscription, offer=offer, today=today
                )
            except ValidationError as error:
                context["extension_note"] = " ".join(error.messages)
        return context


class QuoteCreateView(CustomerRequiredMixin, View):
    def post(self, request, pk: int):
        subscription = get_object_or_404(
            selectors.subscriptions_for_customer(customer_id=request.user.customer_id), pk=pk
        )
        try:
            quote = quote_extension(subscription=subscription, by=request.user, now=timezone.now())
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect(subscription)
        return redirect("subscriptions:quote", pk=quote.pk)


class QuoteDetailView(CustomerRequiredMixin, DetailView):
    template_name = "subscriptions/quote_detail.html"
    context_object_name = "quote"

    def get_queryset(self):
        return selectors.quotes_for_customer(customer_id=self.request.user.customer_id)


class AcceptQuoteView(CustomerRequiredMixin, View):
    def post(self, request, pk: int):
        quote = get_object_or_404(
            selectors.quotes_for_customer(customer_id=request.user.customer_id), pk=pk
        )
        try:
            invoice = accept_quote(quote=quote, by=request.user, now=timezone.now())
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect("subscriptions:quote", pk=pk)
        messages.success(
            request,
            _("Invoice %(number)s has been issued. The extension starts once it is paid.")
            % {"number": invoice.display_number},
        )
        return redirect(invoice)


class InvoiceListView(CustomerRequiredMixin, ListView):
    template_name = "subscriptions/invoice_list.html"
    context_object_name = "invoices"
    paginate_by = 50

    def get_queryset(self):
        return selectors.invoices_for_customer(customer_id=self.request.user.customer_id)


class InvoiceDetailView(CustomerRequiredMixin, DetailView):
    """The invoice as a printable page (the browser's print makes paper or PDF too)."""

    template_name = "subscriptions/invoice_detail.html"
    context_object_name = "invoice"

    def get_queryset(self):
        return selectors.invoices_for_customer(
            customer_id=self.request.user.customer_id
        ).prefetch_related("lines")


class InvoicePdfView(InvoiceDetailView):
    def render_to_response(self, context, **response_kwargs):
        invoice = context["invoice"]
        response = HttpResponse(
            render_invoice_pdf(invoice, language=self.request.LANGUAGE_CODE),
            content_type="application/pdf",
        )
        response["Content-Disposition"] = f'attachment; filename="{invoice.display_number}.pdf"'
        return response
