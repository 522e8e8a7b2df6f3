"""Phone calls from the phone system: real HTTP posts to the running server (live_server),
caller identification, the caller log, the callback list and the after-hours alert."""

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from html import unescape
from zoneinfo import ZoneInfo

import pytest
import time_machine

from desk.models import Call, CallEvent, Inquiry
from subscriptions.models import Customer, UserPhone
from subscriptions.phones import to_e164
from support.models import AfterHoursAlert, OnCallShift, OutboundEmail
from tests.factories import (
    CustomerFactory,
    DisasterFactory,
    SiteFactory,
    SpeedGrantFactory,
    SubscriptionFactory,
    SupportUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "cti-secret-token"
JST = ZoneInfo("Asia/Tokyo")
WORKING = datetime(2026, 6, 3, 10, 0, tzinfo=JST)  # a Wednesday morning
SUNDAY_NIGHT = datetime(2026, 6, 7, 23, 30, tzinfo=JST)


@pytest.fixture(autouse=True)
def _cti_token(settings):
    settings.CTI_TOKEN = TOKEN


def post_event(live_server, payload, *, token=TOKEN, form=False):
    """POST one event as a phone system does; returns (status, parsed JSON body)."""
    if form:
        data = urllib.parse.urlencode(payload, doseq=True).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        data = json.dumps(payload).encode()
        content_type = "application/json"
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Token {token}"
    request = urllib.request.Request(  # noqa: S310 (the live server's http URL)
        f"{live_server.url}/api/v1/cti/events/", data=data, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def known_customer():
    site = SiteFactory(contact_phone="03-6279-0933", customer__phone="")
    return site.customer


def test_numbers_in_any_format_are_one_number():
    assert to_e164("03-6279-0933") == "+81362790933"
    assert to_e164("0362790933") == "+81362790933"
    assert to_e164("+81 3-6279-0933") == "+81362790933"
    assert [to_e164(raw) for raw in ("anonymous", "", "unknown", "非通知", None)] == [None] * 5


@pytest.mark.parametrize("number", ["03-6279-0933", "0362790933", "+81 3-6279-0933"])
def test_a_full_call_from_a_known_customer(live_server, number):
    customer = known_customer()
    staff = SupportUserFactory(email="tanaka@support.example.com")

    with time_machine.travel(WORKING, tick=False):
        new = post_event(
            live_server,
            {"event": "newCall", "from": number, "to": "0362790000", "callId": "c-1"},
        )
    with time_machine.travel(WORKING.replace(minute=1), tick=False):
        answer = post_event(
            live_server,
            {"event": "answer", "callId": "c-1", "user": ["tanaka@support.example.com", "201"]},
        )
    with time_machine.travel(WORKING.replace(minute=4, second=30), tick=False):
        hangup = post_event(
            live_server, {"event": "hangup", "callId": "c-1", "cause": "normalClearing"}
        )

    assert new == (
        200,
        {"call": new[1]["call"], "status": "ringing", "customer": customer.pk, "recorded": True},
    )
    assert answer[1]["status"] == "answered"
    assert hangup[1]["status"] == "ended"
    call = Call.objects.get()
    assert call.customer == customer
    assert (call.from_number, call.from_e164, call.channel) == (number, "+81362790933", "phone")
    assert call.duration == 210 and call.missed is False
    assert list(call.answered_by.all()) == [staff]
    assert call.answered_by_names == ["tanaka@support.example.com", "201"]
    assert (call.after_hours, call.priority) == (False, "normal")
    assert not AfterHoursAlert.objects.exists()


def test_a_replayed_event_is_recorded_once(live_server):
    known_customer()
    payload = {"event": "newCall", "from": "0362790933", "callId": "c-2"}

    first = post_event(live_server, payload)
    again = post_event(live_server, payload)

    assert (first[1]["recorded"], again[1]["recorded"]) == (True, False)
    assert Call.objects.count() == 1
    assert CallEvent.objects.count() == 1


def test_a_wrong_or_missing_token_is_refused_and_nothing_is_saved(live_server, settings):
    payload = {"event": "newCall", "from": "0362790933", "callId": "c-3"}

    assert post_event(live_server, payload, token="wrong")[0] == 403
    assert post_event(live_server, payload, token=None)[0] == 403
    settings.CTI_TOKEN = ""  # CTI switched off: even an empty token is refused
    assert post_event(live_server, payload, token="")[0] == 403
    assert not Call.objects.exists()


def test_a_malformed_event_is_a_400_with_field_errors(live_server):
    status, body = post_event(live_server, {"event": "ring", "direction": "sideways"})

    assert status == 400
    assert body["type"] == "validation_error"
    assert {error["attr"] for error in body["errors"]} == {"event", "callId", "direction"}
    assert not Call.objects.exists()


def test_events_out_of_order_still_make_one_call(live_server):
    customer = known_customer()

    with time_machine.travel(WORKING, tick=False):
        hangup = post_event(
            live_server,
            {"event": "hangup", "from": "0362790933", "callId": "c-4", "cause": "normalClearing"},
        )
    with time_machine.travel(WORKING.replace(minute=1), tick=False):
        answer = post_event(live_server, {"event": "answer", "callId": "c-4", "user": ["201"]})
        new = post_event(live_server, {"event": "newCall", "from": "0362790933", "callId": "c-4"})

    assert (hangup[0], answer[0], new[0]) == (200, 200, 200)
    call = Call.objects.get()
    # The hang-up came first (no answer then: missed); the late answer says it was taken.
    assert (call.status, call.missed, call.customer) == ("ended", False, customer)
    assert call.duration == 0
    assert call.events.count() == 3


def test_a_call_from_an_unknown_or_withheld_number_is_an_unknown_caller(live_server):
    known_customer()

    post_event(live_server, {"event": "newCall", "from": "0120-000-000", "callId": "c-5"})
    post_event(live_server, {"event": "newCall", "from": "anonymous", "callId": "c-6"})

    assert list(Call.objects.order_by("call_id").values_list("customer", "from_e164")) == [
        (None, "+81120000000"),
        (None, ""),
    ]


def test_a_number_several_customers_have_is_chosen_by_staff(live_server, client):
    first = SiteFactory(contact_phone="0494-22-1111", customer__name="秩父市").customer
    second = CustomerFactory(name="秩父商事", phone="")
    user = UserFactory(customer=second)
    UserPhone.objects.create(user=user, number="+81 494 22 1111", label="mobile")
    staff = SupportUserFactory()

    status, body = post_event(
        live_server, {"event": "newCall", "from": "0494221111", "callId": "c-7"}
    )

    assert (status, body["customer"]) == (200, None)
    call = Call.objects.get()
    assert set(call.candidates.all()) == {first, second}
    client.force_login(staff)
    page = client.get(f"/desk/calls/{call.pk}/")
    assert "秩父商事" in page.content.decode()
    response = client.post(
        f"/desk/calls/{call.pk}/", {"action": "customer", "customer": str(second.pk)}
    )
    assert response.status_code == 302
    call.refresh_from_db()
    assert call.customer == second


def links(page) -> dict[str, str]:
    """The page's links by their text."""
    html = page.content.decode()
    return {
        unescape(re.sub(r"<[^>]+>", "", text)).strip(): unescape(href)
        for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', html, re.S)
    }


def link_by_id(page, link_id: str) -> str:
    html = page.content.decode()
    return unescape(re.search(rf'<a href="([^"]+)" id="{link_id}"', html).group(1))


def test_a_missed_call_is_on_the_callback_list_until_called_back(live_server, client):
    customer = known_customer()
    staff = SupportUserFactory(full_name="佐藤")
    with time_machine.travel(WORKING, tick=False):
        post_event(live_server, {"event": "newCall", "from": "0362790933", "callId": "c-8"})
        post_event(live_server, {"event": "hangup", "callId": "c-8", "cause": "noAnswer"})
    call = Call.objects.get()
    assert (call.status, call.missed) == ("missed", True)

    client.force_login(staff)
    queue = client.get("/desk/")
    assert f'data-contact="call-{call.pk}"' in queue.content.decode()
    callback_list = client.get(link_by_id(queue, "callback-list"))
    assert customer.name in callback_list.content.decode()
    call_page = client.get(links(callback_list)["2026-06-03 10:00"])
    assert "record-callback" in call_page.content.decode()
    with time_machine.travel(WORKING.replace(hour=11), tick=False):
        response = client.post(
            call_page.request["PATH_INFO"], {"action": "callback", "note": "折り返し済み"}
        )

    assert response.status_code == 302
    call.refresh_from_db()
    assert (call.status, call.callback_by, call.callback_note) == (
        "called_back",
        staff,
        "折り返し済み",
    )
    assert call.callback_at == WORKING.replace(hour=11)
    assert call.missed is True
    assert customer.name not in client.get(link_by_id(queue, "callback-list")).content.decode()
    assert f'data-contact="call-{call.pk}"' not in client.get("/desk/").content.decode()
    assert "2026-06-03 10:00" in client.get("/desk/calls/").content.decode()


def test_an_inquiry_is_recorded_from_a_call(live_server, client):
    customer = known_customer()
    staff = SupportUserFactory()
    post_event(live_server, {"event": "newCall", "from": "0362790933", "callId": "c-9"})
    call = Call.objects.get()
    client.force_login(staff)

    client.post(
        f"/desk/calls/{call.pk}/",
        {"action": "inquiry", "subject": "請求書の宛名", "body": "宛名を変えたい"},
    )

    inquiry = Inquiry.objects.get()
    call.refresh_from_db()
    assert call.inquiry == inquiry
    assert (inquiry.customer, inquiry.channel, inquiry.recorded_by) == (customer, "phone", staff)


def test_a_call_on_a_sunday_night_alerts_the_on_call_staff_with_who_is_calling(live_server):
    customer = known_customer()
    customer.name = "秩父市役所"
    customer.save()
    site = customer.sites.get()
    line = SubscriptionFactory(site=site, contract_number="BCP-0000042")
    disaster = DisasterFactory(title="令和8年 秩父豪雨")
    grant = SpeedGrantFactory(
        subscription=line,
        blanket_upgrade__disaster=disaster,
        blanket_upgrade__created_at=SUNDAY_NIGHT.replace(hour=9),
    )
    on_call = SupportUserFactory(email="oncall@support.example.com")
    OnCallShift.objects.create(
        staff=on_call,
        starts_at=SUNDAY_NIGHT.replace(hour=18),
        ends_at=SUNDAY_NIGHT.replace(day=8, hour=9),
    )

    with time_machine.travel(SUNDAY_NIGHT, tick=False):
        post_event(live_server, {"event": "newCall", "from": "03-6279-0933", "callId": "c-10"})
        post_event(live_server, {"event": "newCall", "from": "03-6279-0933", "callId": "c-10"})

    call = Call.objects.get()
    assert (call.after_hours, call.priority, call.disaster) == (True, "high", disaster)
    alert = AfterHoursAlert.objects.get()
    assert (alert.contact_kind, alert.contact_id) == ("call", str(call.pk))
    email = OutboundEmail.objects.get()
    assert email.to == ["oncall@support.example.com"]
    assert "秩父市役所" in email.subject
    for expected in (
        "秩父市役所",
        site.name,
        "BCP-0000042",
        "256 kbit/s",  # wanted and on the network: not upgraded yet
        grant.blanket_upgrade.deadline.astimezone(JST).strftime("%Y-%m-%d %H:%M"),
        "令和8年 秩父豪雨",
        f"/desk/calls/{call.pk}/",
    ):
        assert expected in email.body, expected


def test_an_unknown_caller_after_hours_is_alerted_as_unknown_with_the_number(live_server):
    with time_machine.travel(SUNDAY_NIGHT, tick=False):
        post_event(live_server, {"event": "newCall", "from": "090-1234-5678", "callId": "c-11"})

    email = OutboundEmail.objects.get()
    assert "090-1234-5678" in email.subject
    assert "090-1234-5678" in email.body


def test_phones_are_kept_in_e164_where_they_are_saved():
    customer = CustomerFactory(phone="03-6279-0933")
    site = SiteFactory(customer=customer, contact_phone="+81 494-22-0000")

    assert Customer.objects.get(pk=customer.pk).phone_e164 == "+81362790933"
    site.contact_phone = "0494-22-9999"
    site.save(update_fields=["contact_phone"])
    site.refresh_from_db()
    assert site.contact_phone_e164 == "+81494229999"


def form_fields(page, form_id: str) -> dict[str, str]:
    """The hidden fields of the form with this id, as the browser would send them."""
    html = page.content.decode()
    form = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, re.S).group(0)
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_an_upgrade_request_and_a_damage_report_are_recorded_from_a_call(live_server, client):
    customer = known_customer()
    site = customer.sites.get()
    SubscriptionFactory(site=site)
    staff = SupportUserFactory()
    post_event(live_server, {"event": "newCall", "from": "0362790933", "callId": "c-12"})
    call = Call.objects.get()
    client.force_login(staff)
    page = client.get(f"/desk/calls/{call.pk}/")

    client.post(
        page.request["PATH_INFO"],
        {**form_fields(page, "record-upgrade"), "sites": [str(site.pk)], "reason": "disaster"},
    )
    client.post(
        page.request["PATH_INFO"],
        {**form_fields(page, "record-damage"), "site": str(site.pk), "description": "傾いた"},
    )

    call.refresh_from_db()
    assert (call.upgrade_request.channel, call.upgrade_request.customer) == ("phone", customer)
    assert list(call.upgrade_request.sites.all()) == [site]
    assert call.upgrade_request.recorded_by == staff
    assert (call.damage_report.channel, call.damage_report.site) == ("phone", site)
    after = client.get(f"/desk/calls/{call.pk}/").content.decode()
    assert 'id="record-upgrade"' not in after and 'id="record-damage"' not in after


def test_the_caller_log_reads_a_page_in_a_fixed_number_of_queries(
    live_server, client, django_assert_max_num_queries
):
    known_customer()
    answerer = SupportUserFactory(email="tanaka@support.example.com")
    for n in range(30):
        post_event(live_server, {"event": "newCall", "from": "0362790933", "callId": f"q-{n}"})
        post_event(live_server, {"event": "answer", "callId": f"q-{n}", "user": [answerer.email]})
    client.force_login(SupportUserFactory())

    with django_assert_max_num_queries(12):
        page = client.get("/desk/calls/")

    assert page.content.decode().count("data-call=") == 25


def test_the_customer_page_lists_the_customers_calls(live_server, client):
    customer = known_customer()
    with time_machine.travel(WORKING, tick=False):
        post_event(live_server, {"event": "newCall", "from": "0362790933", "callId": "c-13"})
    call = Call.objects.get()
    client.force_login(SupportUserFactory())

    page = client.get(f"/desk/customers/{customer.pk}/")
    call_page = client.get(links(page)["2026-06-03 10:00"])

    assert call_page.context["call"] == call


def test_a_form_encoded_event_as_many_phone_systems_send_it(live_server):
    known_customer()
    staff = SupportUserFactory(email="suzuki@support.example.com")

    post_event(live_server, {"event": "newCall", "from": "0362790933", "callId": "c-14"}, form=True)
    status, body = post_event(
        live_server,
        {"event": "answer", "callId": "c-14", "user[]": ["suzuki@support.example.com", "202"]},
        form=True,
    )

    assert (status, body["status"]) == (200, "answered")
    call = Call.objects.get()
    assert list(call.answered_by.all()) == [staff]
    assert call.answered_by_names == ["suzuki@support.example.com", "202"]


@pytest.mark.parametrize(("answer", "state"), [("keep", "active"), ("decline", "declined")])
def test_the_answer_to_a_blanket_upgrade_is_recorded_from_a_call(
    live_server, client, answer, state
):
    # a customer with two lines waiting for an answer calls
    customer = known_customer()
    site = customer.sites.get()
    grants = [SpeedGrantFactory(subscription__site=site) for _ in range(2)]
    other = SpeedGrantFactory()  # another customer's: untouched
    staff = SupportUserFactory()
    post_event(live_server, {"event": "newCall", "from": "0362790933", "callId": "b-1"})
    call = Call.objects.get()
    client.force_login(staff)
    page = client.get(f"/desk/calls/{call.pk}/")
    assert "2 回線" in page.content.decode()

    # staff press the button of what the customer said
    answered = client.post(
        page.request["PATH_INFO"], {**form_fields(page, "record-blanket-answer"), "answer": answer}
    )

    assert answered.status_code == 302
    for grant in grants:
        grant.refresh_from_db()
        assert (grant.state, grant.response_channel, grant.responded_by) == (state, "phone", staff)
    other.refresh_from_db()
    assert other.state == "pending"
    after = client.get(f"/desk/calls/{call.pk}/").content.decode()
    assert 'id="record-blanket-answer"' not in after and 'id="call-blanket-answer"' in after
    # once per call: the same form posted again records nothing more
    again = client.post(page.request["PATH_INFO"], {"action": "blanket", "answer": "decline"})
    assert again.status_code == 200
    call.refresh_from_db()
    assert call.blanket_answer_lines == 2
