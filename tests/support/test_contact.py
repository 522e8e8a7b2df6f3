from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO), "現在は営業時間内です"),
        (datetime(2026, 11, 24, 22, 0, tzinfo=TOKYO), "現在は営業時間外です"),
        (datetime(2026, 5, 6, 10, 0, tzinfo=TOKYO), "現在は営業時間外です"),
    ],
)
def test_the_contact_page_says_whether_it_is_working_hours_now(client, at, expected):
    with time_machine.travel(at, tick=False):
        page = client.get(reverse("contact"))

    assert page.status_code == 200  # public: no login needed
    assert expected in page.text
    assert "03-6279-0933" in page.text and "support@ipstar.ne.jp" in page.text
