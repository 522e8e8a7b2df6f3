"""How a contact reached us. Every contact kind (request, confirmation, report, inquiry)
records one, so the support desk can filter by it and the FAQ's promise can be audited."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    PORTAL = "portal", _("Portal")
    API = "api", _("API")
    EMAIL_LINK = "email_link", _("Link in e-mail")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("E-mail")
    IP_PHONE = "ip_phone", _("IP phone / Skype")
    SYSTEM = "system", _("System")

    @classmethod
    def staff_recorded(cls) -> list[tuple[str, str]]:
        """The channels a staff member records a contact from."""
        return [(c.value, c.label) for c in (cls.PHONE, cls.EMAIL, cls.IP_PHONE)]
