"""The support mailbox against a real IMAP server (dovecot, tests/imapserver.py): e-mails
delivered into it become inquiries or follow-ups, once, and are moved out of the way."""

import io
import re
import threading
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import make_msgid
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from PIL import Image

from desk import mailbox
from desk.mailbox import fetch_support_mailbox
from desk.models import CannedReply, InboundEmail, Inquiry, InquiryAttachment
from desk.services import assign_inquiry_customer, open_inquiry, reply_to_inquiry
from support.models import AfterHoursAlert, OutboundEmail
from support.outbox import send_queued_emails
from tests.factories import CustomerFactory, SupportUserFactory, UserFactory
from tests.imapserver import IMAPServer

TOKYO = ZoneInfo("Asia/Tokyo")
WORKING_HOURS = datetime(2026, 11, 25, 10, 0, tzinfo=TOKYO)  # a Wednesday morning
NIGHT = datetime(2026, 11, 25, 3, 0, tzinfo=TOKYO)


@pytest.fixture
def imap(settings, tmp_path):
    server = IMAPServer()
    server.start()
    for name, value in server.settings().items():
        setattr(settings, name, value)
    settings.PRIVATE_MEDIA_ROOT = tmp_path
    settings.SUPPORT_EMAIL = "support@bcp.example.jp"
    yield server
    server.stop()


def fetch(now=WORKING_HOURS):
    with time_machine.travel(now, tick=False):
        return fetch_support_mailbox(now=now)


def email(
    *, sender="tanaka@town.example.jp", subject="回線について", body="つながりません。", **headers
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@bcp.example.jp"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="town.example.jp")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return bytes(message)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db
def test_a_customers_email_becomes_an_inquiry_acknowledged_and_moved(
    imap, django_capture_on_commit_callbacks
):
    user = UserFactory(email="tanaka@town.example.jp")
    imap.deliver(email(sender="Tanaka <Tanaka@Town.example.jp>"))

    with django_capture_on_commit_callbacks():
        report = fetch()

    inquiry = Inquiry.objects.get()
    assert (inquiry.customer, inquiry.created_by, inquiry.recorded_by) == (
        user.customer,
        user,
        None,
    )
    assert (inquiry.channel, inquiry.subject) == ("email", "回線について")
    assert inquiry.messages.get().body == "つながりません。"
    assert report.processed == 1 and report.moved == 1
    assert imap.uids("INBOX") == [] and len(imap.uids("Processed")) == 1
    ack = InboundEmail.objects.get().acknowledgement
    assert ack.to == ["tanaka@town.example.jp"]
    assert ack.subject.startswith(f"[#INQ-{inquiry.pk}] ")
    japanese, english = ack.body.split("---------- English ----------")
    assert f"#{inquiry.pk}" in japanese and "03-6279-0933" in japanese
    assert "working hours" in english and "03-6279-0933" in english
    assert ack.headers["Auto-Submitted"] == "auto-replied"
    assert ack.headers["In-Reply-To"] == InboundEmail.objects.get().message_id
    assert not AfterHoursAlert.objects.exists()

    # a second run: nothing new
    fetch()
    assert Inquiry.objects.count() == 1 and OutboundEmail.objects.count() == 1


@pytest.mark.django_db
def test_japanese_subjects_and_bodies_are_decoded(imap):
    UserFactory(email="tanaka@town.example.jp")
    # ISO-2022-JP, as Japanese mail programs still send it
    iso = (
        "From: tanaka@town.example.jp\r\nTo: support@bcp.example.jp\r\n"
        f"Subject: {Header('アンテナが傾きました', 'iso-2022-jp').encode()}\r\n"
        "Message-ID: <iso-1@town.example.jp>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="ISO-2022-JP"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
    ).encode() + "昨夜の台風で傾きました。\r\n".encode("iso-2022-jp")
    # UTF-8 in an encoded-word subject, the body HTML only
    html = EmailMessage()
    html["From"] = "tanaka@town.example.jp"
    html["Subject"] = "速度を上げてください"
    html["Message-ID"] = "<utf-1@town.example.jp>"
    html.set_content("<p>本庁舎の<b>回線</b>です。</p><p>至急&amp;お願いします</p>", subtype="html")
    assert b"=?utf-8?" in bytes(html)
    imap.deliver(iso)
    imap.deliver(bytes(html))

    fetch()

    subjects = {i.subject: i.messages.get().body for i in Inquiry.objects.all()}
    assert subjects == {
        "アンテナが傾きました": "昨夜の台風で傾きました。",
        "速度を上げてください": "本庁舎の回線です。\n至急&お願いします",
    }


@pytest.mark.django_db
def test_a_photo_is_kept_privately_and_a_bad_attachment_is_refused(imap, client):
    user = UserFactory(email="tanaka@town.example.jp")
    message = EmailMessage()
    message["From"] = "tanaka@town.example.jp"
    message["Subject"] = "アンテナの写真"
    message["Message-ID"] = "<photo-1@town.example.jp>"
    message.set_content("写真を送ります。")
    message.add_attachment(png_bytes(), maintype="image", subtype="png", filename="antenna.png")
    # a page pretending to be a photo
    message.add_attachment(
        b"<html><script>x</script></html>", maintype="image", subtype="jpeg", filename="photo.jpg"
    )
    imap.deliver(bytes(message))

    fetch()

    inquiry = Inquiry.objects.get()
    stored = InquiryAttachment.objects.get()
    assert (stored.filename, stored.content_type, stored.inquiry) == (
        "antenna.png",
        "image/png",
        inquiry,
    )
    note = inquiry.messages.get(internal=True)
    assert "photo.jpg" in note.body
    # the customer finds the file on the inquiry's page and opens it
    client.force_login(user)
    page = client.get(f"/inquiries/{inquiry.pk}/").content.decode()
    link = re.search(r'href="(/inquiries/files/\d+/)"', page).group(1)
    response = client.get(link)
    assert response.status_code == 200 and b"".join(response.streaming_content) == png_bytes()
    assert response["Content-Type"] == "image/png"
    # another organisation's user does not; staff do
    client.force_login(UserFactory())
    assert client.get(link).status_code == 404
    client.force_login(SupportUserFactory())
    assert client.get(link).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List_Id": "<news.town.example.jp>"},
    ],
)
def test_auto_replies_and_bulk_mail_get_no_acknowledgement(imap, headers):
    UserFactory(email="tanaka@town.example.jp")
    imap.deliver(email(subject="不在のお知らせ", **headers))

    fetch()

    assert Inquiry.objects.get().subject == "不在のお知らせ"
    assert not OutboundEmail.objects.exists()
    assert imap.uids("INBOX") == []


@pytest.mark.django_db
def test_mail_from_our_own_address_or_a_mailer_daemon_starts_no_loop(imap):
    imap.deliver(email(sender="support@bcp.example.jp", subject="自分宛て"))
    imap.deliver(email(sender="MAILER-DAEMON@mx.town.example.jp", subject="Undelivered Mail"))

    fetch()

    assert not OutboundEmail.objects.exists()
    assert InboundEmail.objects.filter(state="processed").count() == 2


@pytest.mark.django_db
def test_a_reply_to_our_email_is_a_follow_up_threaded_both_ways(
    imap, mailoutbox, django_capture_on_commit_callbacks
):
    user = UserFactory(email="tanaka@town.example.jp")
    imap.deliver(email(subject="回線が遅い"))
    fetch()
    inquiry = Inquiry.objects.get()
    theirs = InboundEmail.objects.get().message_id
    reply_to_inquiry(
        inquiry=inquiry,
        by=SupportUserFactory(),
        body="確認します。",
        internal=False,
        now=WORKING_HOURS,
    )
    send_queued_emails()
    sent = next(m for m in mailoutbox if "確認します" in m.body)
    # the staff reply: the reference, threaded under the customer's e-mail
    assert sent.subject.startswith(f"[#INQ-{inquiry.pk}] ")
    assert sent.extra_headers["In-Reply-To"] == theirs
    assert sent.extra_headers["References"] == theirs
    assert sent.extra_headers["Reply-To"] == "support@bcp.example.jp"
    ours = sent.extra_headers["Message-ID"]

    # the customer answers from another address of theirs, subject changed
    imap.deliver(
        email(
            sender="soumu@town.example.jp",
            subject="Re: 別件",
            body="まだ遅いです。",
            In_Reply_To=ours,
            References=f"{theirs} {ours}",
        )
    )
    fetch()

    assert Inquiry.objects.count() == 1
    inquiry.refresh_from_db()
    assert inquiry.status == "new"
    last = inquiry.messages.order_by("-pk").first()
    assert last.body == "まだ遅いです。" and last.author is None and not last.from_staff
    assert user.customer == inquiry.customer
    assert (
        OutboundEmail.objects.filter(key__startswith="inquiry-ack:").count() == 1
    )  # none for a follow-up


@pytest.mark.django_db
def test_the_reference_in_the_subject_joins_the_inquiry_only_from_its_customer(imap):
    user = UserFactory(email="tanaka@town.example.jp")
    inquiry = open_inquiry(
        customer=user.customer,
        subject="停電",
        body="停電です",
        channel="portal",
        by=user,
        now=WORKING_HOURS,
    )
    imap.deliver(email(subject=f"Re: [#INQ-{inquiry.pk}] 停電", body="復旧しました。"))
    imap.deliver(
        email(
            sender="stranger@example.org", subject=f"[#INQ-{inquiry.pk}] 横から", body="便乗です。"
        )
    )

    fetch()

    assert inquiry.messages.last().body == "復旧しました。"
    other = Inquiry.objects.exclude(pk=inquiry.pk).get()
    assert (other.customer, other.sender_email) == (None, "stranger@example.org")


@pytest.mark.django_db
def test_an_unknown_sender_waits_in_the_queue_until_staff_choose_the_customer(imap, client):
    customer = CustomerFactory(email="info@kaisha.example.jp", name="株式会社サンプル")
    imap.deliver(email(sender="someone@unknown.example.org", subject="はじめまして"))
    imap.deliver(email(sender="INFO@kaisha.example.jp", subject="代表アドレスから"))

    fetch()

    unknown = Inquiry.objects.get(subject="はじめまして")
    assert (unknown.customer, unknown.sender_email) == (None, "someone@unknown.example.org")
    assert Inquiry.objects.get(subject="代表アドレスから").customer == customer
    client.force_login(SupportUserFactory())
    queue = client.get("/desk/").content.decode()
    assert "someone@unknown.example.org" in queue
    ack = InboundEmail.objects.get(inquiry=unknown).acknowledgement
    assert ack.to == ["someone@unknown.example.org"]
    # staff find the field to name the customer on the inquiry's page
    page = client.get(f"/admin/desk/inquiry/{unknown.pk}/change/").content.decode()
    assert 'name="customer_code"' in page
    # staff can answer before they know who it is: the reply goes to the sender
    canned = CannedReply.objects.create(title="t", body="{customer} 様、ありがとうございます。")
    reply = reply_to_inquiry(
        inquiry=unknown,
        by=SupportUserFactory(),
        body="",
        canned_reply=canned,
        internal=False,
        now=WORKING_HOURS,
    )
    assert reply.body.startswith("someone@unknown.example.org 様")
    assert OutboundEmail.objects.get(key=f"inquiry-reply:{reply.pk}").to == [
        "someone@unknown.example.org"
    ]
    assign_inquiry_customer(
        inquiry=unknown, customer=customer, by=SupportUserFactory(), now=WORKING_HOURS
    )
    assert unknown.customer == customer


@pytest.mark.django_db
def test_an_unreadable_email_is_kept_for_staff_and_moved(imap, client):
    imap.deliver(
        b"To: support@bcp.example.jp\r\nSubject: no sender\r\nMessage-ID: <bad@x>\r\n\r\n?\r\n"
    )

    fetch()
    fetch()

    kept = InboundEmail.objects.get()
    assert kept.state == "failed"
    # in the language the job runs in
    assert kept.error in {
        "The e-mail has no sender address.",
        "メールに差出人アドレスがありません。",
    }
    assert b"no sender" in bytes(kept.raw)
    assert not Inquiry.objects.exists() and imap.uids("INBOX") == []
    client.force_login(SupportUserFactory())
    page = client.get("/admin/desk/inboundemail/?state__exact=failed").content.decode()
    assert "no sender" in page
    # staff read it, fix what they can and have it processed again: it fails the same
    # way here (it still has no sender), and stays kept
    client.post(
        "/admin/desk/inboundemail/",
        {"action": "process_again", "_selected_action": [kept.pk]},
    )
    assert InboundEmail.objects.get().state == "received"
    fetch(now=WORKING_HOURS + timedelta(minutes=1))
    assert InboundEmail.objects.get().state == "failed"


@pytest.mark.django_db
def test_an_email_at_night_alerts_the_on_call_staff(imap):
    SupportUserFactory(email="yakin@bcp.example.jp")
    UserFactory(email="tanaka@town.example.jp")
    imap.deliver(email(subject="夜分にすみません"))

    fetch(now=NIGHT)

    alert = AfterHoursAlert.objects.get()
    assert alert.contact_kind == "inquiry" and "夜分にすみません" in alert.summary
    assert alert.email.to == ["yakin@bcp.example.jp"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_fetches_at_once_process_each_email_once(imap):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks and real concurrency, not sqlite")
    UserFactory(email="tanaka@town.example.jp")
    for n in range(6):
        imap.deliver(email(subject=f"問い合わせ{n}"))
    start = threading.Barrier(2)
    errors = []

    def run():
        try:
            start.wait()
            fetch_support_mailbox(now=WORKING_HOURS)
        except Exception as error:  # shown by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    fetch()  # whatever one run skipped while the other held it is moved now
    assert errors == []
    assert sorted(Inquiry.objects.values_list("subject", flat=True)) == [
        f"問い合わせ{n}" for n in range(6)
    ]
    assert OutboundEmail.objects.filter(key__startswith="inquiry-ack:").count() == 6
    assert imap.uids("INBOX") == [] and len(imap.uids("Processed")) == 6


class Killed(BaseException):
    """The worker killed between the commit and the IMAP move (SIGKILL, power cut)."""


@pytest.mark.django_db
def test_an_email_whose_fetch_died_before_the_move_is_moved_once_by_a_later_fetch(
    imap, monkeypatch
):
    UserFactory(email="tanaka@town.example.jp")
    imap.deliver(email())

    def killed(box, uids, folder):
        raise Killed

    with monkeypatch.context() as during_the_crash:
        during_the_crash.setattr(mailbox, "_move", killed)
        with pytest.raises(Killed):
            fetch()
    assert Inquiry.objects.count() == 1 and imap.uids("INBOX") != []

    # a minute later the move may still be under way: the message is left alone
    report = fetch(WORKING_HOURS + timedelta(minutes=1))
    assert report.moved == 0 and imap.uids("INBOX") != []

    # past the lease it is moved, and not processed again
    report = fetch(WORKING_HOURS + mailbox.MOVE_LEASE + timedelta(minutes=1))
    assert (report.processed, report.moved) == (0, 1)
    assert imap.uids("INBOX") == [] and len(imap.uids("Processed")) == 1
    assert Inquiry.objects.count() == 1
