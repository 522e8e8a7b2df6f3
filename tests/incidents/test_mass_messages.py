"""Mass messages (issue 8): an operator writes once, sees how many organisations and
addresses it will reach, confirms, and each organisation in the audience is told once."""

import json
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from incidents import broadcasts, tasks
from incidents.models import MassMessage, MassMessageDelivery
from support.models import FollowUp, OutboundEmail
from tests.factories import (
    BlanketUpgradeFactory,
    CustomerFactory,
    DisasterFactory,
    OperatorUserFactory,
    SupportUserFactory,
    UserFactory,
)
from tests.followups import asked_for, run_follow_ups
from tests.upgrades.conftest import form_data, make_lines, post_forms

pytestmark = pytest.mark.django_db

SUBJECT = "【重要】秩父豪雨に伴う衛星回線のご案内"
BODY = "停電中の拠点では衛星回線をご利用ください。\n詳細は追ってお知らせします。"


def customer_at(prefecture: str, *, users: int = 1, start: date = date(2024, 4, 1)):
    """An organisation with one line at a site in ``prefecture`` and ``users`` users."""
    customer = CustomerFactory()
    make_lines(1, prefecture=prefecture, customer=customer, start=start)
    for _ in range(users):
        UserFactory(customer=customer)
    return customer


def message_form(html: str) -> dict:
    """The page's message form (the other POST form is the log-out button)."""
    return next(f for f in post_forms(html) if "idempotency_key" in dict(f["fields"]))


def queue_all() -> None:
    """What the worker does after the commits these tests do not make (one transaction)."""
    for message_id in MassMessage.objects.filter(queued_at__isnull=True).values_list(
        "pk", flat=True
    ):
        tasks.queue_mass_message(message_id)


def send(*, key="k", audience="prefectures", prefectures=("11",), disaster=None, **text):
    return broadcasts.send_mass_message(
        operator=OperatorUserFactory(),
        subject_ja=text.get("subject_ja", SUBJECT),
        body_ja=text.get("body_ja", BODY),
        subject_en=text.get("subject_en", ""),
        body_en=text.get("body_en", ""),
        audience=audience,
        disaster=disaster,
        prefectures=list(prefectures),
        idempotency_key=key,
        now=timezone.now(),
    )


def test_the_operator_previews_confirms_and_each_customer_in_scope_gets_one_email(
    client, smtp_server, send_emails, django_capture_on_commit_callbacks
):
    # given: two customers in Saitama (one with two users), one in Kochi, and one in
    # Saitama whose line starts next year
    first = customer_at("11", users=2)
    second = customer_at("11")
    elsewhere = customer_at("39")
    not_yet = customer_at("11", start=date(timezone.localdate().year + 1, 4, 1))
    disaster = DisasterFactory(nationwide=False, prefectures=["11"])
    client.force_login(OperatorUserFactory())

    # when: the operator follows the dashboard's link and writes the message
    dashboard = client.get(reverse("operator-dashboard")).text
    form_url = reverse("incidents:mass-message-form")
    assert f'href="{form_url}"' in dashboard
    page = client.get(form_url).text
    form = message_form(page)
    preview = client.post(
        form["action"],
        form_data(
            form["fields"],
            audience="disaster",
            disaster=str(disaster.pk),
            subject_ja=SUBJECT,
            body_ja=BODY,
            subject_en="Satellite line notice",
            body_en="Please use the satellite line.",
        ),
    )

    # then: the preview counts the two organisations and their five addresses
    assert preview.status_code == 200
    assert '<dd id="preview-organisations">2</dd>' in preview.text
    assert '<dd id="preview-addresses">5</dd>' in preview.text
    assert "停電中の拠点では衛星回線をご利用ください。" in preview.text
    assert not MassMessage.objects.exists()  # nothing is sent before confirming

    # when: they confirm, and a worker queues and sends
    confirm = message_form(preview.text)
    with django_capture_on_commit_callbacks(execute=True):
        sent_page = client.post(confirm["action"], form_data(confirm["fields"]), follow=True)
    run_follow_ups(tasks.queue_mass_message)
    send_emails()

    # then: one e-mail per organisation in scope, to all its addresses, through SMTP
    message = MassMessage.objects.get()
    assert (message.organisations, message.addresses) == (2, 5)
    assert (message.queued_organisations, message.is_queued) == (2, True)
    assert message.created_by.is_staff and message.disaster == disaster
    assert "0 / 2 (0%)" in sent_page.text  # the page came back before the worker queued
    assert "2 / 2 (100%)" in client.get(message.get_absolute_url()).text
    received = {tuple(sorted(m["to"])) for m in smtp_server.messages}
    expected = {
        tuple(sorted([c.email.lower(), *(u.email.lower() for u in c.users.all())]))
        for c in (first, second)
    }
    assert received == expected
    assert len(smtp_server.messages) == 2
    mail = smtp_server.messages[0]
    assert mail["subject"] == f"{SUBJECT} / Satellite line notice"
    text = mail["message"].get_payload(decode=True).decode()
    assert text.index("停電中の拠点") < text.index("---------- English ----------")
    assert "Please use the satellite line." in text
    reached = set(MassMessageDelivery.objects.values_list("customer_id", flat=True))
    assert reached == {first.pk, second.pk}
    assert elsewhere.pk not in reached and not_yet.pk not in reached


def test_the_disaster_page_links_to_a_message_for_its_customers(client):
    blanket = BlanketUpgradeFactory(disaster=DisasterFactory(nationwide=False, prefectures=["11"]))
    client.force_login(OperatorUserFactory())

    page = client.get(reverse("upgrades:disaster", args=[blanket.pk])).text
    link = f"{reverse('incidents:mass-message-form')}?disaster={blanket.disaster.pk}"
    form = client.get(link).text

    assert f'href="{link}"' in page
    assert f'<option value="{blanket.disaster.pk}" selected>' in form
    assert 'value="disaster" required id="id_audience_0" checked' in form


def test_confirming_twice_sends_once(client, send_emails, django_capture_on_commit_callbacks):
    customer_at("11")
    client.force_login(OperatorUserFactory())
    page = client.get(reverse("incidents:mass-message-form")).text
    form = message_form(page)
    data = form_data(
        form["fields"], audience="prefectures", prefectures=["11"], subject_ja=SUBJECT, body_ja=BODY
    )
    confirm = message_form(client.post(form["action"], data).text)

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(confirm["action"], form_data(confirm["fields"]))
        second = client.post(confirm["action"], form_data(confirm["fields"]), follow=True)
    assert len(asked_for(tasks.queue_mass_message)) == 1
    run_follow_ups(tasks.queue_mass_message)
    tasks.queue_mass_message(MassMessage.objects.get().pk)  # a message redelivered too
    sent = send_emails()

    assert first.status_code == 302
    assert "送信済み" in second.text
    assert MassMessage.objects.count() == 1
    assert MassMessageDelivery.objects.count() == 1
    assert len(sent) == 1


def test_running_the_queueing_again_or_after_a_crash_reaches_each_organisation_once(
    send_emails,
):
    customers = [customer_at("13") for _ in range(5)]
    message = send(prefectures=["13"])

    # a worker queues two chunks of two, then dies; another resumes; a third repeats
    broadcasts.queue_mass_message_deliveries(
        message_id=message.pk, now=timezone.now(), chunk_size=2, max_chunks=2
    )
    message.refresh_from_db()
    assert (message.queued_organisations, message.is_queued) == (4, False)
    broadcasts.queue_mass_message_deliveries(
        message_id=message.pk, now=timezone.now(), chunk_size=2
    )
    again = broadcasts.queue_mass_message_deliveries(message_id=message.pk, now=timezone.now())
    sent = send_emails()

    message.refresh_from_db()
    assert again == 0
    assert (message.queued_organisations, message.is_queued) == (5, True)
    assert sorted(MassMessageDelivery.objects.values_list("customer_id", flat=True)) == sorted(
        c.pk for c in customers
    )
    assert OutboundEmail.objects.filter(key__startswith=f"mass-message:{message.pk}:").count() == 5
    assert len(sent) == 5


def test_queueing_takes_a_constant_number_of_queries_per_chunk(
    django_assert_max_num_queries,
):
    for _ in range(12):
        customer_at("13", users=2)
    message = send(prefectures=["13"])

    with django_assert_max_num_queries(4 * 9 + 3):  # 4 chunks of 4 (3 full, 1 empty)
        broadcasts.queue_mass_message_deliveries(
            message_id=message.pk, now=timezone.now(), chunk_size=4
        )

    assert MassMessageDelivery.objects.count() == 12


def test_everyone_in_service_reaches_every_prefecture_but_not_lines_out_of_service():
    reached = [customer_at("01"), customer_at("47")]
    customer_at("13", start=date(timezone.localdate().year + 1, 1, 1))

    message = send(audience="everyone", prefectures=())
    queue_all()

    assert message.nationwide and message.organisations == 2
    assert set(MassMessageDelivery.objects.values_list("customer_id", flat=True)) == {
        c.pk for c in reached
    }


def test_customers_see_messages_sent_to_them_on_their_home_page(
    client, django_assert_max_num_queries
):
    saitama, kochi = customer_at("11"), customer_at("39")
    for n in range(7):
        send(key=f"k{n}", subject_ja=f"お知らせ{n}", body_ja=f"本文{n}\n二行目")
    queue_all()
    send(key="kochi", prefectures=["39"], subject_ja="高知のお知らせ")
    queue_all()

    client.force_login(saitama.users.first())
    # The home counts lines by state (two queries) and its sites for the page links.
    with django_assert_max_num_queries(14) as seven:
        home = client.get("/").text
    for n in range(7, 17):
        send(key=f"more{n}", subject_ja=f"お知らせ{n}")
    queue_all()
    with django_assert_max_num_queries(len(seven.captured_queries)):
        client.get("/")
    client.force_login(kochi.users.first())
    other = client.get("/").text

    assert "お知らせ6" in home and "本文6<br>二行目" in home
    assert "お知らせ1" not in home  # only the last five
    assert "高知のお知らせ" not in home
    assert "高知のお知らせ" in other and "お知らせ6" not in other


def test_customers_and_support_cannot_send_mass_messages(client):
    url = reverse("incidents:mass-message-form")
    assert client.get(url).status_code == 302  # anonymous: log in first

    for user in (UserFactory(), SupportUserFactory()):
        client.force_login(user)
        assert client.get(url).status_code == 403
        assert client.get(reverse("incidents:mass-messages")).status_code == 403
        assert client.post(reverse("incidents:mass-message-send"), {}).status_code == 403
    assert not MassMessage.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"subject_ja": "", "body_ja": BODY},  # Japanese subject missing
        {"subject_ja": SUBJECT, "body_ja": "   "},  # only blanks
        {"audience": "prefectures", "prefectures": None},  # no prefecture
        {"audience": "prefectures", "prefectures": ["99"]},  # no such prefecture
        {"audience": "disaster", "disaster": "12345"},  # no such disaster
        {"audience": "disaster", "disaster": "1" * 40},  # absurd id
        {"audience": "nobody"},
        {"subject_en": "Notice", "body_en": ""},  # English half given
        {"idempotency_key": "x" * 65},
    ],
)
def test_bad_input_is_a_form_error_not_a_crash(client, changes):
    client.force_login(OperatorUserFactory())
    data = {
        "audience": "prefectures",
        "prefectures": ["11"],
        "subject_ja": SUBJECT,
        "body_ja": BODY,
        "idempotency_key": "abc",
        **changes,
    }
    data = {k: v for k, v in data.items() if v is not None}

    for url in ("incidents:mass-message-preview", "incidents:mass-message-send"):
        response = client.post(reverse(url), data)
        assert response.status_code == 400
        assert 'class="errorlist' in response.text
    assert not MassMessage.objects.exists()


def test_an_ended_disaster_cannot_be_messaged_as_an_audience(client):
    declared = timezone.now() - timedelta(days=3)
    disaster = DisasterFactory(
        declared_at=declared, ended_at=timezone.now(), ended_by=OperatorUserFactory()
    )
    client.force_login(OperatorUserFactory())

    response = client.post(
        reverse("incidents:mass-message-send"),
        {
            "audience": "disaster",
            "disaster": disaster.pk,
            "subject_ja": SUBJECT,
            "body_ja": BODY,
            "idempotency_key": "abc",
        },
    )

    assert response.status_code == 400
    assert not MassMessage.objects.exists()


def test_the_list_of_sent_messages_shows_counts_with_a_fixed_number_of_queries(
    client, django_assert_max_num_queries
):
    customer_at("11", users=2)
    for n in range(3):
        send(key=f"k{n}", subject_ja=f"お知らせ{n}")
    queue_all()
    client.force_login(OperatorUserFactory())

    with django_assert_max_num_queries(10) as three:
        page = client.get(reverse("incidents:mass-messages")).text
    for n in range(3, 20):
        send(key=f"k{n}", subject_ja=f"お知らせ{n}")
    with django_assert_max_num_queries(len(three.captured_queries)):
        client.get(reverse("incidents:mass-messages"))

    assert "お知らせ2" in page and "<td>1</td><td>3</td>" in page


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_queue_each_delivery_once(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks and real concurrency, not sqlite")
    customers = [customer_at("11") for _ in range(30)]
    message = send(prefectures=["11"])
    counts = []
    start = threading.Barrier(2)

    def worker():
        start.wait()
        counts.append(
            broadcasts.queue_mass_message_deliveries(
                message_id=message.pk, now=timezone.now(), chunk_size=4
            )
        )
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    message.refresh_from_db()
    assert sum(counts) == 30
    assert (message.queued_organisations, message.is_queued) == (30, True)
    assert MassMessageDelivery.objects.filter(message=message).count() == 30
    keys = OutboundEmail.objects.filter(key__startswith=f"mass-message:{message.pk}:")
    assert keys.count() == 30
    assert set(MassMessageDelivery.objects.values_list("customer_id", flat=True)) == {
        c.pk for c in customers
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_confirmations_at_once_send_one_message(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's real concurrency, not sqlite")
    customer_at("11")
    operator = OperatorUserFactory()
    results = []
    start = threading.Barrier(2)

    def confirm():
        start.wait()
        results.append(
            broadcasts.send_mass_message(
                operator=operator,
                subject_ja=SUBJECT,
                body_ja=BODY,
                audience="prefectures",
                prefectures=["11"],
                idempotency_key="same-token",
                now=timezone.now(),
            ).pk
        )
        connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2 and len(set(results)) == 1
    assert MassMessage.objects.count() == 1


def test_the_message_is_posted_once_to_the_chat_gateway_when_one_is_set(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    received = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.MASS_MESSAGE_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    customer_at("11")
    try:
        message = send(subject_en="Notice", body_en="Use the satellite line.")
        with django_capture_on_commit_callbacks(execute=True):
            queue_all()
            queue_all()  # queueing again finishes nothing twice
        posts = asked_for(tasks.post_mass_message_webhook)
        run_follow_ups(tasks.post_mass_message_webhook)
        again = broadcasts.post_mass_message_webhook(message_id=message.pk)
    finally:
        server.shutdown()
        server.server_close()

    message.refresh_from_db()
    assert posts == [(message.pk,)] and again is False
    assert len(received) == 1
    assert received[0]["subject"] == f"{SUBJECT} / Notice"
    assert received[0]["text"].startswith(BODY)
    assert received[0]["organisations"] == 1
    assert message.webhook_status == "posted (204)"


def test_without_a_gateway_nothing_is_posted(settings, monkeypatch):
    settings.MASS_MESSAGE_WEBHOOK_URL = ""
    customer_at("11")

    message = send()
    queue_all()

    assert asked_for(tasks.post_mass_message_webhook) == []
    assert not broadcasts.post_mass_message_webhook(message_id=message.pk)


def test_confirming_again_asks_again_for_a_queueing_still_due(client, send_emails):
    customer_at("11")
    client.force_login(OperatorUserFactory())
    form = message_form(client.get(reverse("incidents:mass-message-form")).text)
    data = form_data(
        form["fields"], audience="prefectures", prefectures=["11"], subject_ja=SUBJECT, body_ja=BODY
    )
    confirm = message_form(client.post(form["action"], data).text)
    client.post(confirm["action"], form_data(confirm["fields"]))
    # its follow-up gone (deleted by hand, or recorded before follow-ups existed)
    FollowUp.objects.all().delete()

    # when the operator confirms again (back, then submit)
    client.post(confirm["action"], form_data(confirm["fields"]))

    # then nothing new is sent, and the queueing it still waits for is asked for again
    message = MassMessage.objects.get()
    assert asked_for(tasks.queue_mass_message) == [(message.pk,)]
    run_follow_ups(tasks.queue_mass_message)
    assert len(send_emails()) == 1
