from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from subscriptions.models import RenewalReminder
from subscriptions.services import send_renewal_reminders
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")


def test_a_line_ending_soon_is_reminded_once_with_the_open_offer(settings, send_emails):
    settings.RENEWAL_REMINDER_DAYS = 90
    user = UserFactory(email="tanaka@town.example.jp")
    line = SubscriptionFactory(site__customer=user.customer, service_start=date(2014, 4, 1))
    SubscriptionFactory(site__customer=user.customer, service_start=date(2016, 4, 1))  # later

    before = send_renewal_reminders(now=datetime(2018, 12, 1, 9, tzinfo=TOKYO))
    first = send_renewal_reminders(now=datetime(2019, 1, 10, 9, tzinfo=TOKYO))
    again = send_renewal_reminders(now=datetime(2019, 1, 11, 9, tzinfo=TOKYO))

    assert (before, first, again) == (0, 1, 0)
    assert RenewalReminder.objects.get().subscription == line
    message = send_emails()[0]
    assert "tanaka@town.example.jp" in message.to
    assert "2019-03-31" in message.body  # the last day of service
    assert "2021-12-31" in message.body  # the offer it can take


def test_with_no_open_offer_the_reminder_says_so_and_points_to_support(send_emails):
    now = datetime(2026, 11, 24, 9, tzinfo=TOKYO)
    line = SubscriptionFactory(service_start=(now - timedelta(days=5 * 365 - 30)).date())
    UserFactory(customer=line.site.customer)

    send_renewal_reminders(now=now)

    assert "03-6279-0933" in send_emails()[0].body
    assert "延長" in send_emails()[0].body
