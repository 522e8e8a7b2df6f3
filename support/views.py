from django.utils import timezone
from django.views.generic import TemplateView

from support.calendar import holiday_name, is_working_time


class ContactView(TemplateView):
    """How to reach support (FAQ Q2, Q3), and whether the desk is in working hours now.

    Public: a customer whose login fails still needs the phone number.
    """

    template_name = "support/contact.html"

    def get_context_data(self, **kwargs):
        now = timezone.localtime()
        return {
            **super().get_context_data(**kwargs),
            "working_now": is_working_time(now),
            "holiday": holiday_name(now.date()),
            "now": now,
        }
