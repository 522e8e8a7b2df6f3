"""Customer-scoped reads of sites and subscriptions, each a fixed number of queries."""

from django.db.models import Prefetch, QuerySet

from subscriptions.models import Site, Subscription


def subscriptions_for_customer(*, customer_id: int) -> QuerySet[Subscription]:
    return Subscription.objects.for_customer(customer_id).select_related("site", "plan")


def sites_with_subscriptions(*, customer_id: int) -> QuerySet[Site]:
    """The customer's sites, each with its subscriptions and their plans: two queries."""
    return Site.objects.filter(customer_id=customer_id).prefetch_related(
        Prefetch(
            "subscriptions",
            queryset=Subscription.objects.select_related("plan").order_by("-service_start"),
        )
    )
