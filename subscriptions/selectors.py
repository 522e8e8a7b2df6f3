"""Customer-scoped reads of sites, subscriptions and invoices, each a fixed number of
queries."""

from datetime import date

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from subscriptions.models import Invoice, Quote, Subscription


def line_count_of_site():
    """Each site's number of lines, for ``Site.objects.annotate(line_count=…)``: one
    subquery, whatever the number of sites listed."""
    count = (
        Subscription.objects.filter(site=OuterRef("pk"))
        .order_by()
        .values("site")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(count, output_field=IntegerField()), 0)


def subscriptions_for_customer(*, customer_id: int) -> QuerySet[Subscription]:
    return Subscription.objects.for_customer(customer_id).select_related("site", "plan")


def invoices_for_customer(*, customer_id: int) -> QuerySet[Invoice]:
    return Invoice.objects.filter(customer_id=customer_id).select_related(
        "subscription__site", "credits"
    )


def quotes_for_customer(*, customer_id: int) -> QuerySet[Quote]:
    return Quote.objects.filter(subscription__site__customer_id=customer_id).select_related(
        "subscription__site", "offer"
    )


def timeline(subscription: Subscription, *, today: date) -> list[tuple[date, str, bool]]:
    """The dates that matter for one line, oldest first: (day, what, already passed)."""
    entries = [
        (subscription.service_start, _("Service started")),
        (subscription.term_last_day, _("Last day of the five-year term")),
    ]
    if subscription.extended_until and subscription.extended_until >= subscription.term_end:
        entries.append((subscription.extended_until, _("Last day of the paid extension")))
    return [(day, label, day < today) for day, label in entries]
