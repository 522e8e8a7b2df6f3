"""Reads about incidents that more than one page needs."""

from incidents.models import Disaster, MassMessage
from subscriptions.models import Site


def active_disasters_for_customer(*, customer_id: int) -> list[Disaster]:
    """Active disasters whose area holds one of the customer's sites (every customer for a
    nationwide one): the banner with the operator's message. One query on calm days, two
    while a regional disaster is active."""
    disasters = list(Disaster.objects.active().order_by("declared_at", "pk"))
    if not any(not disaster.nationwide for disaster in disasters):
        return disasters
    prefectures = set(
        Site.objects.filter(customer_id=customer_id).values_list("prefecture", flat=True)
    )
    return [
        disaster
        for disaster in disasters
        if disaster.nationwide or prefectures & set(disaster.prefectures)
    ]


def mass_messages_for_customer(*, customer_id: int, limit: int = 5) -> list[MassMessage]:
    """The latest mass messages sent to the organisation, for its home page: one query."""
    return list(
        MassMessage.objects.filter(deliveries__customer_id=customer_id)
        .only("subject_ja", "body_ja", "subject_en", "body_en", "created_at")
        .order_by("-created_at", "-pk")[:limit]
    )
