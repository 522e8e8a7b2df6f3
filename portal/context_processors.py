from django.conf import settings

from incidents.selectors import active_disasters_for_customer
from incidents.services import current_outage
from support.access import is_customer_user
from upgrades.selectors import pending_grants_for_customer


def portal(request):
    """What every page shows: the support contacts (FAQ Q2/Q3: phone around the clock),
    a ground-station outage while it lasts (one query) and, for a customer, the active
    disasters covering their sites with the operator's message (one or two queries) and
    the blanket upgrades waiting for their answer (one query)."""
    context = {
        "support_phone": settings.SUPPORT_PHONE,
        "support_email": settings.SUPPORT_EMAIL,
        "current_outage": current_outage(),
    }
    user = getattr(request, "user", None)
    if user is not None and is_customer_user(user):
        context["pending_grants"] = pending_grants_for_customer(customer_id=user.customer_id)
        context["disasters_for_customer"] = active_disasters_for_customer(
            customer_id=user.customer_id
        )
    return context
