"""General inquiries: customers ask, support triages and answers in the admin."""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from desk.models import Inquiry, InquiryMessage
from desk.services import customer_follow_up, open_inquiry, reply_to_inquiry
from support.models import AfterHoursAlert, OnCallShift
from tests.factories import SiteFactory, SupportUserFactory, UserFactory
from tests.support.admin_pages import change_form_data

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
# A Tuesday: in working hours at 10:00, after hours at 22:00.
WORKING = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
NIGHT = datetime(2026, 11, 24, 22, 0, tzinfo=TOKYO)
CHANGELIST = "admin:desk_inquiry_changelist"


@pytest.fixture
def customer_user():
    user = UserFactory()
    SiteFactory(customer=user.customer, name="秩父本社")
    return user


@pytest.fixture
def support(client):
    user = SupportUserFactory()
    client.force_login(user)
    return user


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def new_inquiry(user, *, now=WORKING, subject="請求書について", body="請求書の宛名を変えたい"):
    return open_inquiry(
        customer=user.customer, subject=subject, body=body, channel="portal", by=user, now=now
    )


def test_an_inquiry_after_hours_is_high_priority_and_alerts_the_on_call_staff(
    client, customer_user, django_capture_on_commit_callbacks
):
    client.force_login(customer_user)
    site = customer_user.customer.sites.get()

    with time_machine.travel(NIGHT, tick=False), django_capture_on_commit_callbacks():
        response = client.post(
            reverse("desk:inquiries"),
            {"subject": "アンテナの向き", "body": "台風の後に傾いています", "site": site.pk},
        )

    inquiry = Inquiry.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("desk:inquiry", args=[inquiry.pk])
    assert (inquiry.after_hours, inquiry.priority, inquiry.status) == (True, "high", "new")
    assert (inquiry.channel, inquiry.created_by, inquiry.site) == ("portal", customer_user, site)
    alert = AfterHoursAlert.objects.get()
    assert (alert.contact_kind, alert.contact_id) == ("inquiry", str(inquiry.pk))
    assert inquiry.messages.get().body == "台風の後に傾いています"


def test_an_inquiry_in_working_hours_is_normal_priority_without_an_alert(client, customer_user):
    client.force_login(customer_user)

    with time_machine.travel(WORKING, tick=False):
        client.post(reverse("desk:inquiries"), {"subject": "請求", "body": "質問です"})

    inquiry = Inquiry.objects.get()
    assert (inquiry.after_hours, inquiry.priority, inquiry.site) == (False, "normal", None)
    assert not AfterHoursAlert.objects.exists()


def test_a_staff_reply_is_emailed_and_shown_but_an_internal_note_never_is(
    client, customer_user, django_capture_on_commit_callbacks, send_emails
):
    staff = SupportUserFactory()
    colleague = UserFactory(customer=customer_user.customer)
    inquiry = new_inquiry(customer_user)

    with django_capture_on_commit_callbacks(execute=True):
        reply_to_inquiry(
            inquiry=inquiry, by=staff, body="内部メモ: 経理に確認中", internal=True, now=WORKING
        )
    assert send_emails() == []
    with django_capture_on_commit_callbacks(execute=True):
        reply_to_inquiry(
            inquiry=inquiry, by=staff, body="宛名を変更しました。", internal=False, now=WORKING
        )

    inquiry.refresh_from_db()
    assert inquiry.status == "answered"
    (sent,) = send_emails()
    assert set(sent.to) == {
        customer_user.email,
        colleague.email,
        customer_user.customer.email,
    }
    assert "宛名を変更しました。" in sent.body and "English" in sent.body
    assert "内部メモ" not in sent.body
    reply = InquiryMessage.objects.select_related("email").get(internal=False, from_staff=True)
    assert reply.email.status == "sent" and reply.email.sent_at is not None
    client.force_login(customer_user)
    page = client.get(reverse("desk:inquiry", args=[inquiry.pk]))
    assert "宛名を変更しました。" in page.text and "内部メモ" not in page.text
    api = api_for(customer_user).get(f"/api/v1/inquiries/{inquiry.pk}/")
    bodies = [m["body"] for m in api.json()["messages"]]
    assert bodies == ["請求書の宛名を変えたい", "宛名を変更しました。"]


def test_a_customer_follow_up_puts_the_inquiry_back_in_the_queue(client, customer_user):
    inquiry = new_inquiry(customer_user)
    reply_to_inquiry(
        inquiry=inquiry, by=SupportUserFactory(), body="回答", internal=False, now=WORKING
    )
    client.force_login(customer_user)

    response = client.post(reverse("desk:inquiry", args=[inquiry.pk]), {"body": "追加の質問"})
    api = api_for(customer_user).post(
        f"/api/v1/inquiries/{inquiry.pk}/follow-up/", {"body": "さらに質問"}, format="json"
    )

    inquiry.refresh_from_db()
    assert response.status_code == 302 and api.status_code == 201
    assert inquiry.status == "new"
    assert [m["body"] for m in api.json()["messages"]][-2:] == ["追加の質問", "さらに質問"]


def test_customers_open_and_list_inquiries_over_the_api(customer_user):
    api = api_for(customer_user)
    site = customer_user.customer.sites.get()

    created = api.post(
        "/api/v1/inquiries/", {"subject": "件名", "body": "本文", "site": site.pk}, format="json"
    )
    listed = api.get("/api/v1/inquiries/")

    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "new"
    assert Inquiry.objects.get().channel == "api"
    assert [i["id"] for i in listed.json()["results"]] == [created.json()["id"]]


def test_another_organisations_inquiry_is_not_found(client, customer_user):
    other = UserFactory()
    theirs = new_inquiry(other)
    client.force_login(customer_user)
    api = api_for(customer_user)

    assert client.get(reverse("desk:inquiry", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("desk:inquiry", args=[theirs.pk]), {"body": "x"}).status_code == 404
    assert api.get(f"/api/v1/inquiries/{theirs.pk}/").status_code == 404
    assert (
        api.post(
            f"/api/v1/inquiries/{theirs.pk}/follow-up/", {"body": "x"}, format="json"
        ).status_code
        == 404
    )
    assert api.get("/api/v1/inquiries/").json()["results"] == []
    assert theirs.subject not in client.get(reverse("desk:inquiries")).text
    assert theirs.messages.count() == 1


def test_staff_cannot_use_the_customer_pages(client, support):
    assert client.get(reverse("desk:inquiries")).status_code == 403


@pytest.mark.parametrize(
    "data",
    [
        {"subject": "", "body": "本文"},
        {"subject": "件名", "body": ""},
        {"subject": "   ", "body": "   "},
        {"subject": "件名", "body": "本文", "site": "99999999999999999999999"},
        {"subject": "件名", "body": "本文", "site": "abc"},
        {"subject": "x" * 201, "body": "本文"},
    ],
)
def test_bad_input_on_the_page_is_a_form_error_and_saves_nothing(client, customer_user, data):
    client.force_login(customer_user)

    response = client.post(reverse("desk:inquiries"), data)

    assert response.status_code == 400
    assert response.context["form"].errors
    assert not Inquiry.objects.exists()


def test_another_organisations_site_is_refused_on_the_page_and_the_api(client, customer_user):
    other_site = SiteFactory()
    client.force_login(customer_user)
    data = {"subject": "件名", "body": "本文", "site": other_site.pk}

    page = client.post(reverse("desk:inquiries"), data)
    api = api_for(customer_user).post("/api/v1/inquiries/", data, format="json")

    assert page.status_code == 400 and page.context["form"].errors["site"]
    assert api.status_code == 400
    assert [e["attr"] for e in api.json()["errors"]] == ["site"]
    assert not Inquiry.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"subject": "", "body": "本文"},
        {"subject": "件名", "body": ""},
        {"subject": "件名", "body": "   "},
        {"subject": "件名", "body": "本文", "site": 2**70},
        {"subject": "件名", "body": "本文", "site": "abc"},
        {"subject": ["a"], "body": {"x": 1}},
    ],
)
def test_bad_api_bodies_get_400(customer_user, body):
    response = api_for(customer_user).post("/api/v1/inquiries/", body, format="json")

    assert response.status_code == 400
    assert not Inquiry.objects.exists()


def test_an_empty_follow_up_is_refused(client, customer_user):
    inquiry = new_inquiry(customer_user)
    client.force_login(customer_user)

    page = client.post(reverse("desk:inquiry", args=[inquiry.pk]), {"body": " "})
    api = api_for(customer_user).post(
        f"/api/v1/inquiries/{inquiry.pk}/follow-up/", {"body": ""}, format="json"
    )

    assert page.status_code == 400 and page.context["form"].errors["body"]
    assert api.status_code == 400
    assert inquiry.messages.count() == 1


def test_support_records_a_phone_inquiry(client, support):
    site = SiteFactory()

    with time_machine.travel(NIGHT, tick=False):
        response = client.post(
            reverse("admin:desk_inquiry_add"),
            {
                "customer": site.customer_id,
                "site": site.pk,
                "channel": "phone",
                "contact_phone": "0494-22-0000",
                "subject": "回線が遅い",
                "body": "夜間に電話で受付。",
            },
        )

    assert response.status_code == 302, response.context["adminform"].form.errors
    inquiry = Inquiry.objects.get()
    assert (inquiry.channel, inquiry.recorded_by, inquiry.created_by) == ("phone", support, None)
    assert (inquiry.after_hours, inquiry.priority) == (True, "high")
    assert inquiry.messages.get().author == support
    assert AfterHoursAlert.objects.filter(contact_kind="inquiry").exists()


def test_support_cannot_record_an_inquiry_by_portal_or_for_another_customers_site(client, support):
    site, other = SiteFactory(), SiteFactory()
    data = {"customer": site.customer_id, "subject": "s", "body": "b", "contact_phone": ""}

    by_portal = client.post(
        reverse("admin:desk_inquiry_add"), {**data, "site": site.pk, "channel": "portal"}
    )
    wrong_site = client.post(
        reverse("admin:desk_inquiry_add"), {**data, "site": other.pk, "channel": "phone"}
    )
    no_body = client.post(
        reverse("admin:desk_inquiry_add"), {**data, "body": "", "channel": "phone"}
    )

    assert by_portal.context["adminform"].form.errors["channel"]
    assert wrong_site.context["adminform"].form.errors["site"]
    assert no_body.context["adminform"].form.errors["body"]
    assert not Inquiry.objects.exists()


def _change_form_data(client, inquiry, **fields) -> dict:
    """What the change page posts back as it stands (the read-only messages inline
    included), with the fields the agent changed."""
    page = client.get(reverse("admin:desk_inquiry_change", args=[inquiry.pk]))
    return change_form_data(page.text, **fields)


def test_support_replies_and_notes_from_the_change_page(
    client, support, customer_user, django_capture_on_commit_callbacks, send_emails
):
    inquiry = new_inquiry(customer_user)
    url = reverse("admin:desk_inquiry_change", args=[inquiry.pk])

    with django_capture_on_commit_callbacks(execute=True):
        noted = client.post(
            url, _change_form_data(client, inquiry, reply="社内確認中", internal="on")
        )
        replied = client.post(
            url, _change_form_data(client, inquiry, reply="対応しました", assignee=support.pk)
        )

    assert noted.status_code == 302 and replied.status_code == 302
    inquiry.refresh_from_db()
    assert (inquiry.status, inquiry.assignee) == ("answered", support)
    assert list(inquiry.messages.values_list("body", "internal", "author")) == [
        ("請求書の宛名を変えたい", False, customer_user.pk),
        ("社内確認中", True, support.pk),
        ("対応しました", False, support.pk),
    ]
    # The admin's request only queued the reply: a worker sends it.
    assert mail.outbox == []
    (sent,) = send_emails()
    assert "対応しました" in sent.body and "社内確認中" not in sent.body
    page = client.get(url)
    assert "社内確認中" in page.text  # staff see their notes


def test_assign_to_me_and_close_in_bulk(client, support, customer_user):
    inquiries = [new_inquiry(customer_user) for _ in range(2)]
    ids = [i.pk for i in inquiries]

    client.post(reverse(CHANGELIST), {"action": "assign_to_me", "_selected_action": ids})
    client.post(reverse(CHANGELIST), {"action": "close", "_selected_action": ids})
    again = client.post(
        reverse(CHANGELIST), {"action": "close", "_selected_action": ids}, follow=True
    )

    assert set(Inquiry.objects.values_list("status", "assignee")) == {("closed", support.pk)}
    assert all(i.closed_at for i in Inquiry.objects.all())
    assert again.status_code == 200


def test_a_customer_follow_up_reopens_a_closed_inquiry(customer_user):
    inquiry = new_inquiry(customer_user)
    Inquiry.objects.filter(pk=inquiry.pk).update(status="closed", closed_at=timezone.now())
    inquiry.refresh_from_db()

    customer_follow_up(inquiry=inquiry, by=customer_user, body="まだ解決しません", now=WORKING)

    inquiry.refresh_from_db()
    assert (inquiry.status, inquiry.closed_at) == ("new", None)


def test_the_inquiry_queue_keeps_its_query_count_as_rows_grow(
    client, support, django_assert_max_num_queries
):
    def count() -> int:
        with django_assert_max_num_queries(40) as captured:
            page = client.get(reverse(CHANGELIST), {"q": ""})
            assert page.status_code == 200
        return len(captured.captured_queries)

    def add(n):
        for _ in range(n):
            user = UserFactory()
            site = SiteFactory(customer=user.customer)
            inquiry = open_inquiry(
                customer=user.customer,
                subject="件名",
                body="本文",
                channel="portal",
                by=user,
                site=site,
                now=NIGHT,
            )
            Inquiry.objects.filter(pk=inquiry.pk).update(assignee=support)

    add(2)
    few = count()
    add(15)
    many = count()

    assert many == few


def test_the_customer_pages_keep_their_query_count_as_rows_grow(
    client, customer_user, django_assert_max_num_queries
):
    def count(url) -> int:
        with django_assert_max_num_queries(30) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    client.force_login(customer_user)
    first = new_inquiry(customer_user)
    few = (count(reverse("desk:inquiries")), count(f"/api/v1/inquiries/{first.pk}/"))
    for _ in range(10):
        new_inquiry(customer_user)
        customer_follow_up(inquiry=first, by=customer_user, body="追記", now=WORKING)
    many = (count(reverse("desk:inquiries")), count(f"/api/v1/inquiries/{first.pk}/"))

    assert many == few


def test_a_canned_reply_is_sent_without_typing(
    client, support, customer_user, django_capture_on_commit_callbacks, send_emails
):
    from desk.models import CannedReply

    canned = CannedReply.objects.create(
        title="地上局復旧", body="地上局は復旧しました。回線をご確認ください。"
    )
    inquiry = new_inquiry(customer_user)
    url = reverse("admin:desk_inquiry_change", args=[inquiry.pk])
    # the agent picks it from the page's list of canned replies
    page = client.get(url).text
    picked = re.search(r'<option value="(\d+)">地上局復旧</option>', page).group(1)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, _change_form_data(client, inquiry, reply="", canned_reply=picked))

    assert inquiry.messages.filter(body=canned.body, internal=False).exists()
    assert canned.body in send_emails()[0].body


def test_the_inquiry_page_offers_only_staff_and_keeps_notes_from_the_customer(
    client, support, customer_user
):
    from support.models import ContactEvent
    from tests.support.admin_pages import select_options

    inquiry = new_inquiry(customer_user)
    url = reverse("admin:desk_inquiry_change", args=[inquiry.pk])

    offered = select_options(client.get(url).text, "assignee")
    refused = client.post(url, _change_form_data(client, inquiry, assignee=customer_user.pk))
    noted = client.post(
        url,
        _change_form_data(
            client, inquiry, internal_note="折り返しは夕方", priority="high", priority_reason="役所"
        ),
    )

    assert str(support.pk) in offered and str(customer_user.pk) not in offered
    assert refused.context["adminform"].form.errors["assignee"]
    assert noted.status_code == 302
    inquiry.refresh_from_db()
    assert (inquiry.assignee, inquiry.priority) == (None, "high")
    assert sorted(ContactEvent.objects.values_list("action", flat=True)) == ["note", "priority"]
    client.force_login(customer_user)
    mine = client.get(reverse("desk:inquiries"))
    assert "折り返しは夕方" not in mine.text
    assert "折り返しは夕方" not in client.get(reverse("desk:inquiry", args=[inquiry.pk])).text


def test_an_after_hours_follow_up_on_the_customer_page_alerts_the_staff_on_call(
    client, customer_user, send_emails, django_capture_on_commit_callbacks
):
    on_call = SupportUserFactory(email="yakin@bcp.example.jp")
    OnCallShift.objects.create(
        staff=on_call, starts_at=NIGHT - timedelta(hours=2), ends_at=NIGHT + timedelta(hours=8)
    )
    inquiry = new_inquiry(customer_user, subject="アンテナの角度")
    reply_to_inquiry(inquiry=inquiry, by=on_call, body="調整しました", internal=False, now=WORKING)
    send_emails()
    client.force_login(customer_user)

    with time_machine.travel(NIGHT, tick=False), django_capture_on_commit_callbacks(execute=True):
        listing = client.get(reverse("desk:inquiries")).text
        (url,) = set(re.findall(rf'href="([^"]*/{inquiry.pk}/)"', listing))
        page = client.get(url).text
        assert 'name="body"' in page and 'method="post"' in page
        posted = client.post(url, {"body": "夜になってまた切れました"})
        again = client.post(url, {"body": "今も切れています"})

    assert posted.status_code == again.status_code == 302
    alerts = AfterHoursAlert.objects.filter(contact_kind="inquiry_follow_up")
    assert alerts.count() == 2  # one per follow-up message
    sent = [m for m in send_emails() if m.to == ["yakin@bcp.example.jp"]]
    assert len(sent) == 2
    assert all(f"#{inquiry.pk}" in m.subject and "営業時間外" in m.subject for m in sent)
    assert f"/admin/desk/inquiry/{inquiry.pk}/change/" in sent[0].body


def test_a_follow_up_in_working_hours_alerts_nobody(customer_user):
    inquiry = new_inquiry(customer_user)

    customer_follow_up(inquiry=inquiry, by=customer_user, body="追記", now=WORKING)

    assert not AfterHoursAlert.objects.exists()


def test_a_follow_up_on_an_answered_inquiry_waits_for_a_new_first_response(
    client, customer_user, support
):
    inquiry = new_inquiry(customer_user)
    reply_to_inquiry(inquiry=inquiry, by=support, body="確認します", internal=False, now=WORKING)
    client.force_login(customer_user)

    # the customer writes again at night, on the page
    with time_machine.travel(NIGHT, tick=False):
        assert client.post(f"/inquiries/{inquiry.pk}/", {"body": "まだです"}).status_code == 302

    inquiry.refresh_from_db()
    assert (inquiry.status, inquiry.first_response_at) == ("new", None)
    # a new target from the follow-up (clock time at night), not the old one met at noon
    assert inquiry.respond_by > NIGHT
    # and the desk's "past its target" filter shows it once that passes
    client.force_login(support)
    with time_machine.travel(inquiry.respond_by + timedelta(minutes=1), tick=False):
        late = client.get("/desk/", {"overdue": "on", "status": "open", "sort": "sla"})
    assert f'data-contact="inquiry-{inquiry.pk}"' in late.text


def test_a_reply_to_an_inquiry_closed_meanwhile_is_refused_and_kept_on_the_page(
    client, customer_user, support
):
    inquiry = new_inquiry(customer_user)
    url = reverse("admin:desk_inquiry_change", args=[inquiry.pk])
    form = _change_form_data(client, inquiry, reply="折り返しお電話します")
    # a colleague closes it while this agent types
    from desk.services import close_inquiry

    close_inquiry(inquiry=inquiry, by=support, now=timezone.now())

    page = client.post(url, form)

    assert page.status_code == 200
    assert "折り返しお電話します" in page.text
    assert page.context["adminform"].form.errors["reply"]
    assert not inquiry.messages.filter(from_staff=True).exists()
