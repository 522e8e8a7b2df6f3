from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils.html import escape

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


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "expected"),
    [("ja", "天皇誕生日"), ("en", "Emperor's Birthday")],
)
def test_the_contact_page_names_the_holiday_in_the_page_language(client, language, expected):
    client.cookies["django_language"] = language

    with time_machine.travel(datetime(2026, 2, 23, 10, 0, tzinfo=TOKYO), tick=False):
        page = client.get(reverse("contact"))

    assert f'<html lang="{language}">' in page.text
    assert escape(expected) in page.text
