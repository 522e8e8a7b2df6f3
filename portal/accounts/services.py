"""Account use cases."""

from django.contrib.auth.models import Group
from django.db import transaction

from portal.accounts.models import Role, User


@transaction.atomic
def give_customer_role(*, user: User) -> None:
    """A user of a customer organisation gets the customer role, so the portal opens.

    Staff users get their role (support or operator) chosen by a person in the admin.
    """
    if user.customer_id is not None:
        user.groups.add(Group.objects.get(name=Role.CUSTOMER))
