import csv
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from subscriptions.models import (
    Customer,
    ExtensionOffer,
    Invoice,
    InvoiceLine,
    Plan,
    Site,
    Subscription,
    UserPhone,
)
from subscriptions.phones import to_e164
from subscriptions.services import cancel_invoice, record_payment
from subscriptions.speed_causes import describe_cause
from support.admin import (
    EstimatedCountPaginator,
    IndexedSearchMixin,
    SafeActionsMixin,
    is_database_id,
)


class PhoneSearchMixin(IndexedSearchMixin):
    """The indexed search, and a phone number typed in any form (``0494-22-2211``,
    ``+81 494 22 2211``): rows whose ``phone_search_fields`` (E.164 columns, each
    indexed) hold that number, added to what the text matches."""

    phone_search_fields: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        number = to_e164(search_term)
        if number is None or not self.phone_search_fields:
            return found, may_have_duplicates
        ids = None
        for field in self.phone_search_fields:
            matching = self.model._default_manager.filter(**{field: number})
            matching = matching.order_by().values_list("pk", flat=True)
            ids = matching if ids is None else ids.union(matching)
        return found | self.rows_with_ids(queryset, ids), False


def customer_story_link(customer_id: int | None) -> str:
    """A link to the desk's page of everything about one customer. The desk sits above
    every app's admin: its page is named for reverse(), never imported."""
    if customer_id is None:
        return "-"
    return format_html(
        '<a href="{}">{}</a>',
        reverse("desk:customer", args=[customer_id]),
        _("The customer's whole story"),
    )


def customer_filter(path: str) -> type[admin.SimpleListFilter]:
    """``?customer=<id>`` for a list whose customer is more than one relation away
    (``site__customer``), which the admin refuses as a URL lookup unless filtered on.
    Only the chosen customer is offered: every organisation would not fit the sidebar;
    the desk's customer page links here with it set."""

    class CustomerFilter(admin.SimpleListFilter):
        title = _("customer")
        parameter_name = "customer"

        def lookups(self, request, model_admin):
            value = self.value()
            if not value:
                return []
            customer = None
            if is_database_id(value):
                customer = Customer.objects.filter(pk=value).only("name").first()
            return [(value, customer.name if customer else value)]

        def queryset(self, request, queryset):
            value = self.value()
            if not value:
                return queryset
            # An id that cannot be one matches nothing, rather than everything.
            if not is_database_id(value):
                return queryset.none()
            return queryset.filter(**{f"{path}_id": value})

    return CustomerFilter


class SiteInline(admin.TabularInline):
    model = Site
    fields = ["name", "prefecture", "address", "contact_phone", "antenna_serial", "modem_serial"]
    extra = 0
    show_change_link = True


@admin.register(Customer)
class CustomerAdmin(PhoneSearchMixin, SafeActionsMixin, admin.ModelAdmin):
    list_display = ["code", "name", "kind", "phone", "email", "created_at"]
    list_filter = ["kind"]
    # Indexed (subscr_cust_*_upper_idx); also what the customer pickers search.
    search_fields = ["^code", "^name"]
    phone_search_fields = ("phone_e164",)
    search_help_text = _("The start of the customer code or of the name, or a phone number.")
    paginator = EstimatedCountPaginator
    sortable_by = ["name"]
    inlines = [SiteInline]
    show_full_result_count = False
    readonly_fields = ["whole_story"]

    @admin.display(description=_("support desk"))
    def whole_story(self, obj: Customer) -> str:
        return customer_story_link(obj.pk)


@admin.register(Site)
class SiteAdmin(PhoneSearchMixin, SafeActionsMixin, admin.ModelAdmin):
    list_display = ["name", "customer", "prefecture", "address", "contact_phone", "antenna_serial"]
    list_filter = ["prefecture"]
    list_select_related = ["customer"]
    # Indexed (subscr_site_name_upper_idx, subscr_cust_*_upper_idx); also what the site
    # pickers search.
    search_fields = ["^name", "^customer__code", "^customer__name"]
    phone_search_fields = ("contact_phone_e164", "customer__phone_e164")
    search_help_text = _(
        "The start of the site name, or of its customer's code or name, or a phone number."
    )
    paginator = EstimatedCountPaginator
    sortable_by = []
    autocomplete_fields = ["customer"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        # Moving a site to another organisation would hand it that site's contracts.
        return ["customer"] if obj else []


@admin.register(UserPhone)
class UserPhoneAdmin(SafeActionsMixin, admin.ModelAdmin):
    """The numbers customer users call from: a call from one is their organisation's."""

    list_display = ["number", "label", "user", "customer"]
    list_select_related = ["user__customer"]
    search_fields = ["number", "number_e164", "user__email", "user__full_name"]
    raw_id_fields = ["user"]
    fields = ["user", "number", "label"]
    show_full_result_count = False

    @admin.display(description=_("customer"), ordering="user__customer__name")
    def customer(self, obj: UserPhone) -> str:
        return str(obj.user.customer or "")


@admin.register(Plan)
class PlanAdmin(SafeActionsMixin, admin.ModelAdmin):
    list_display = ["name", "normal_kbps", "upgraded_kbps"]
    search_fields = ["name"]


class ExpiryYearFilter(admin.SimpleListFilter):
    title = _("term end year")
    parameter_name = "term_end_year"

    def lookups(self, request, model_admin):
        # A fixed range rather than a DISTINCT over a table that may hold a million rows.
        # Terms are five years, so the range runs from the oldest contracts to five years out.
        last = timezone.localdate().year + 6
        return [(str(year), str(year)) for year in range(2016, last)]

    def queryset(self, request, queryset):
        # Only the years offered: anything else typed into the URL filters nothing.
        if self.value() in {year for year, _label in self.lookup_choices}:
            return queryset.filter(term_end__year=int(self.value()))
        return queryset


class StateFilter(admin.SimpleListFilter):
    """Subscription state as of today, translated into date conditions (indexable)."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return Subscription.State.choices

    def queryset(self, request, queryset):
        today = timezone.localdate()
        soon = today + timedelta(days=settings.EXPIRING_SOON_DAYS)
        active = queryset.filter(status=Subscription.Status.ACTIVE)
        match self.value():
            case Subscription.State.CANCELLED:
                return queryset.filter(status=Subscription.Status.CANCELLED)
            case Subscription.State.EXTENDED:
                return active.filter(term_end__lte=today, extended_until__gte=today)
            case Subscription.State.EXPIRED:
                return active.filter(term_end__lte=today).filter(
                    Q(extended_until__isnull=True) | Q(extended_until__lt=today)
                )
            # Within the term, as state_on(): the service end counts a paid extension.
            case Subscription.State.EXPIRING_SOON:
                return active.filter(term_end__gt=today).exclude(
                    Q(term_end__gt=soon) | Q(extended_until__gte=soon)
                )
            case Subscription.State.ACTIVE:
                return active.filter(term_end__gt=today).filter(
                    Q(term_end__gt=soon) | Q(extended_until__gte=soon)
                )
        return queryset


@admin.register(Subscription)
class SubscriptionAdmin(PhoneSearchMixin, SafeActionsMixin, admin.ModelAdmin):
    list_display = [
        "contract_number",
        "site",
        "customer",
        "prefecture",
        "plan",
        "service_start",
        "term_end",
        "extended_until",
        "state",
        "static_ip",
    ]
    list_filter = [StateFilter, "plan", "static_ip", "site__prefecture", ExpiryYearFilter]
    list_select_related = ["site__customer", "plan"]
    # Indexed (subscr_sub_contract_upper_idx, subscr_site_name_upper_idx,
    # subscr_cust_*_upper_idx).
    search_fields = [
        "^contract_number",
        "^site__name",
        "^site__customer__code",
        "^site__customer__name",
    ]
    phone_search_fields = ("site__contact_phone_e164", "site__customer__phone_e164")
    search_help_text = _(
        "The start of the contract number, of the site name, or of the customer's code or"
        " name, or a phone number."
    )
    paginator = EstimatedCountPaginator
    # The default order (term end) has an index (subscr_sub_term_end_idx); other columns
    # would sort a million rows.
    sortable_by = ["term_end"]
    autocomplete_fields = ["site"]
    # Speeds change only through the services (a request, a disaster, a revert): they
    # record the change for the network and its audit. Shown here, never edited.
    readonly_fields = [
        "term_end",
        "extended_until",
        "created_at",
        "speed_wanted",
        "speed_change_number",
        "speed_reason",
        "speed_applied",
    ]
    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        # A line is cancelled, never deleted: its grants and speed audit name it, without
        # a database key on those million-row tables (upgrades.models.SpeedGrant).
        return False

    @admin.display(description=_("upgrade wanted"), boolean=True)
    def speed_wanted(self, obj: Subscription) -> bool:
        return obj.speed.desired_upgraded

    @admin.display(description=_("speed change number"))
    def speed_change_number(self, obj: Subscription) -> int:
        return obj.speed.desired_version

    @admin.display(description=_("reason for the speed"))
    def speed_reason(self, obj: Subscription) -> str:
        return describe_cause(obj.speed.desired_cause) if obj.speed.desired_cause else "-"

    @admin.display(description=_("upgraded on the network"), boolean=True)
    def speed_applied(self, obj: Subscription) -> bool:
        return obj.speed.applied_upgraded

    @admin.display(description=_("customer"), ordering="site__customer__name")
    def customer(self, obj: Subscription) -> Customer:
        return obj.site.customer

    @admin.display(description=_("state"))
    def state(self, obj: Subscription) -> str:
        return obj.state_on(timezone.localdate()).label

    @admin.display(description=_("prefecture"), ordering="site__prefecture")
    def prefecture(self, obj: Subscription) -> str:
        return obj.site.get_prefecture_display()


@admin.register(ExtensionOffer)
class ExtensionOfferAdmin(SafeActionsMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "extends_until",
        "annual_price_yen",
        "static_ip_annual_price_yen",
        "tax_rate_percent",
        "opens_on",
        "closes_on",
    ]
    search_fields = ["name"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = ["description", "amount_yen", "tax_rate_percent"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _spreadsheet_safe(text: str) -> str:
    # A cell starting with = + - @ is a formula to Excel: quote it (CSV injection).
    return f"'{text}" if text[:1] in {"=", "+", "-", "@"} else text


class RecordPaymentForm(forms.Form):
    amount_yen = forms.IntegerField(label=_("amount (yen)"), min_value=1, max_value=10**12)
    paid_on = forms.DateField(label=_("paid on"), widget=forms.DateInput(attrs={"type": "date"}))
    reference = forms.CharField(label=_("bank-transfer reference"), max_length=100)


@admin.register(Invoice)
class InvoiceAdmin(SafeActionsMixin, admin.ModelAdmin):
    """Issued documents are read-only here: payments and cancellations are actions."""

    list_display = [
        "invoice_number",
        "kind",
        "issued_on",
        "due_on",
        "customer",
        "subscription",
        "total_yen",
        "status",
    ]
    list_filter = ["status", "kind", "issued_on"]
    list_select_related = ["customer", "subscription"]
    search_fields = ["number", "customer__name", "customer__code", "subscription__contract_number"]
    inlines = [InvoiceLineInline]
    actions = ["export_csv", "cancel_with_credit_note"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Invoice._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("invoice number"), ordering="number")
    def invoice_number(self, obj: Invoice) -> str:
        return obj.display_number

    def get_urls(self):
        return [
            path(
                "<int:pk>/record-payment/",
                self.admin_site.admin_view(self.record_payment_view),
                name="subscriptions_invoice_record_payment",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # An absolute URL: the change page's own address may or may not end with "change/".
        if object_id.isascii() and object_id.isdigit():
            extra_context = {
                **(extra_context or {}),
                "record_payment_url": reverse(
                    "admin:subscriptions_invoice_record_payment", args=[int(object_id)]
                ),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def record_payment_view(self, request, pk: int):
        invoice = get_object_or_404(Invoice, pk=pk)
        if not self.has_change_permission(request, invoice):
            raise PermissionDenied
        form = RecordPaymentForm(request.POST or None, initial={"amount_yen": invoice.total_yen})
        if request.method == "POST" and form.is_valid():
            try:
                record_payment(
                    invoice=invoice, by=request.user, now=timezone.now(), **form.cleaned_data
                )
            except ValidationError as error:
                if hasattr(error, "error_dict"):
                    for field, errors in error.error_dict.items():
                        form.add_error(field if field in form.fields else None, errors)
                else:
                    form.add_error(None, error)
            else:
                self.message_user(
                    request,
                    _("Payment recorded: %(number)s is paid and the extension is effective.")
                    % {"number": invoice.display_number},
                )
                return redirect("admin:subscriptions_invoice_change", invoice.pk)
        return TemplateResponse(
            request,
            "admin/subscriptions/record_payment.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Record a payment for %(number)s") % {"number": invoice.display_number},
                "invoice": invoice,
                "form": form,
                "opts": self.model._meta,
            },
        )

    @admin.action(description=_("Export as CSV for accounting"))
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="invoices.csv"'
        response.write("\ufeff")  # a BOM, so that Excel reads the Japanese names right
        writer = csv.writer(response)
        writer.writerow(
            ["number", "kind", "issued_on", "due_on", "customer_code", "customer", "contract",
             "subtotal_yen", "tax_rate_percent", "tax_yen", "total_yen", "status", "paid_on_jst"]
        )  # fmt: skip
        for invoice in queryset.select_related("customer", "subscription").order_by("number"):
            writer.writerow(
                [
                    invoice.display_number,
                    invoice.kind,
                    invoice.issued_on.isoformat(),
                    invoice.due_on.isoformat(),
                    _spreadsheet_safe(invoice.customer.code),
                    _spreadsheet_safe(invoice.customer.name),
                    _spreadsheet_safe(invoice.subscription.contract_number),
                    invoice.subtotal_yen,
                    invoice.tax_rate_percent,
                    invoice.tax_yen,
                    invoice.total_yen,
                    invoice.status,
                    timezone.localdate(invoice.paid_at).isoformat() if invoice.paid_at else "",
                ]
            )
        return response

    @admin.action(description=_("Cancel (issues a credit note)"), permissions=["change"])
    def cancel_with_credit_note(self, request, queryset):
        for invoice in queryset:
            try:
                credit = cancel_invoice(invoice=invoice, by=request.user, now=timezone.now())
            except ValidationError as error:
                self.message_user(
                    request, f"{invoice}: {' '.join(error.messages)}", messages.WARNING
                )
            else:
                self.message_user(request, _("%(credit)s issued.") % {"credit": credit})
