"""Operator mistakes the pages and the API prevent: declaring twice, over an active
disaster, ending by one click; and what the disaster page says after its deadline."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from support.channels import Channel
from tests.factories import OperatorUserFactory, UpgradeRequestFactory
from tests.upgrades.conftest import form_data, make_lines, post_forms
from upgrades.models import BlanketUpgrade, SpeedGrant
from upgrades.services.blanket import (
    apply_blanket_upgrade,
    declare_disaster,
    respond_to_grants,
    revert_expired_grants,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    client.force_login(OperatorUserFactory())
    return client


def open_declare_form(client) -> dict:
    """From the dashboard, follow the "Declare" link and read the form it shows."""
    dashboard = client.get("/operator/").text
    link = re.search(r'<a class="button" href="([^"]+)"', dashboard).group(1)
    page = client.get(link)
    assert "no-store" in page["Cache-Control"]
    return next(f for f in post_forms(page.text) if "idempotency_key" in dict(f["fields"]))


def fill(form: dict, **changes) -> dict:
    base = {"title": "首都直下地震", "window_days": "3", "message": "落ち着いて行動してください"}
    return form_data(form["fields"], **{**base, **changes})


def test_resubmitting_the_same_form_redirects_to_the_disaster_it_declared(operator_client):
    make_lines(2, prefecture="13")
    form = open_declare_form(operator_client)
    data = fill(form, prefectures=["13"])

    first = operator_client.post(form["action"], data)
    assert "宣言しました" in operator_client.get(first["Location"]).text
    again = operator_client.post(form["action"], data)  # back + submit, or a replay

    blanket = BlanketUpgrade.objects.get()
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == f"/operator/disasters/{blanket.pk}/"
    page = operator_client.get(again["Location"]).text
    declared_at = timezone.localtime(blanket.disaster.declared_at).strftime("%H:%M")
    assert "このフォームは送信済みです" in page
    assert "首都直下地震" in page and declared_at in page
    assert "宣言しました" not in page


def test_a_new_form_for_an_area_already_covered_asks_before_declaring(operator_client):
    make_lines(2, prefecture="13")
    first = open_declare_form(operator_client)
    operator_client.post(first["action"], fill(first, prefectures=["13", "14"]))
    second = open_declare_form(operator_client)  # a fresh token, the same area and more

    refused = operator_client.post(
        second["action"], fill(second, title="二度目", prefectures=["11", "13"])
    )

    assert refused.status_code == 400
    assert BlanketUpgrade.objects.count() == 1
    assert "首都直下地震" in refused.text and "東京都" in refused.text
    assert "埼玉県" not in refused.text.split('id="overlap"')[1].split("</p>")[0]
    # the page shown again carries what was typed and a box to tick
    again = next(f for f in post_forms(refused.text) if "idempotency_key" in dict(f["fields"]))
    assert dict(again["fields"])["title"] == "二度目"
    assert "confirm_overlap" in refused.text and "そのまま宣言する" in refused.text
    unticked = operator_client.post(again["action"], form_data(again["fields"]))
    assert unticked.status_code == 400 and BlanketUpgrade.objects.count() == 1

    confirmed = operator_client.post(
        again["action"], form_data(again["fields"], confirm_overlap="on")
    )

    assert confirmed.status_code == 302
    assert BlanketUpgrade.objects.count() == 2
    assert BlanketUpgrade.objects.filter(disaster__title="二度目").exists()


@pytest.mark.parametrize(
    ("active", "new", "overlap"),
    [
        ((True, []), (False, ["01"]), True),
        ((False, ["01"]), (True, []), True),
        ((True, []), (True, []), True),
        ((False, ["01", "02"]), (False, ["02", "03"]), True),
        ((False, ["01"]), (False, ["02"]), False),
    ],
    ids=["active-nationwide", "new-nationwide", "both-nationwide", "shared", "apart"],
)
def test_the_service_refuses_an_overlap_unless_confirmed(active, new, overlap):
    operator = OperatorUserFactory()
    now = timezone.now()
    declare_disaster(
        operator=operator,
        title="first",
        nationwide=active[0],
        prefectures=active[1],
        idempotency_key="a",
        now=now,
    )

    def second(**kwargs):
        return declare_disaster(
            operator=operator,
            title="second",
            nationwide=new[0],
            prefectures=new[1],
            idempotency_key="b",
            now=now,
            **kwargs,
        )

    if overlap:
        with pytest.raises(ValidationError) as refused:
            second()
        assert "confirm_overlap" in refused.value.message_dict
        assert "first" in refused.value.message_dict["confirm_overlap"][0]
        second(confirm_overlap=True)
    else:
        second()
    assert BlanketUpgrade.objects.count() == 2


def test_an_ended_disaster_does_not_count_as_an_overlap():
    from upgrades.services.blanket import end_disaster

    operator = OperatorUserFactory()
    now = timezone.now()
    first = declare_disaster(
        operator=operator, title="t", nationwide=True, prefectures=[], idempotency_key="a", now=now
    )
    end_disaster(disaster=first.disaster, operator=operator, now=now)

    declare_disaster(
        operator=operator, title="t", nationwide=True, prefectures=[], idempotency_key="b", now=now
    )

    assert BlanketUpgrade.objects.count() == 2


def declared(*, lines: int = 3, now=None) -> BlanketUpgrade:
    make_lines(lines)
    now = now or timezone.now()
    blanket = declare_disaster(
        operator=OperatorUserFactory(),
        title="令和8年 豪雨",
        nationwide=True,
        prefectures=[],
        window_days=3,
        idempotency_key="k",
        now=now,
    )
    apply_blanket_upgrade(blanket_id=blanket.pk, now=now)
    blanket.refresh_from_db()
    return blanket


def test_ending_a_disaster_asks_first_and_says_what_happens_to_the_lines(operator_client):
    blanket = declared(lines=3)
    kept = blanket.grants.order_by("pk").first().subscription
    SpeedGrant.objects.create(  # an approved request keeps this line fast
        subscription=kept,
        source="request",
        upgrade_request=UpgradeRequestFactory(customer=kept.site.customer),
        state="active",
        starts_at=timezone.now(),
    )
    page = operator_client.get(f"/operator/disasters/{blanket.pk}/").text

    # the "End" control on the disaster page is a link to a question, not a POST
    assert not [f for f in post_forms(page) if f["action"].endswith("/end/")]
    link = re.search(r'<a class="button" href="([^"]+/end/)"', page).group(1)
    question = operator_client.get(link)

    assert question.status_code == 200
    assert re.search(r'id="still-upgraded">3<', question.text)
    assert re.search(r'id="kept">1<', question.text)
    assert re.search(r'id="back-to-normal">2<', question.text)
    assert f'href="/operator/disasters/{blanket.pk}/"' in question.text  # cancel
    form = next(f for f in post_forms(question.text) if f["action"].endswith("/end/"))

    bare = operator_client.post(form["action"], form_data(form["fields"], confirm=None))
    blanket.refresh_from_db()
    assert bare.status_code == 302 and bare["Location"] == link
    assert blanket.status == "active" and blanket.disaster.ended_at is None

    ended = operator_client.post(form["action"], form_data(form["fields"]))

    blanket.refresh_from_db()
    assert ended["Location"] == f"/operator/disasters/{blanket.pk}/"
    assert blanket.status == "ended" and blanket.disaster.ended_at is not None
    after = operator_client.get(ended["Location"]).text
    assert "災害対応を終了しました" in after
    assert link not in after  # nothing left to end


def test_after_the_deadline_the_disaster_reads_deadline_passed_with_final_counts(
    operator_client,
):
    # declared four days ago with three days to answer (sessions do not outlive travel)
    blanket = declared(lines=3, now=timezone.now() - timedelta(days=4))
    grant = blanket.grants.order_by("pk").first()
    respond_to_grants(  # one confirmed, by phone the next hour
        grants=SpeedGrant.objects.filter(pk=grant.pk),
        keep=True,
        by=None,
        channel=Channel.PHONE,
        now=blanket.created_at + timedelta(hours=1),
    )
    api = APIClient()
    api.force_authenticate(OperatorUserFactory())

    with time_machine.travel(blanket.deadline - timedelta(minutes=1), tick=False):
        before = operator_client.get(f"/operator/disasters/{blanket.pk}/").text
    revert_expired_grants(now=timezone.now())
    page = operator_client.get(f"/operator/disasters/{blanket.pk}/").text
    dashboard = operator_client.get("/operator/").text
    detail = api.get(f"/api/v1/operator/disasters/{blanket.pk}/").json()
    listed = api.get("/api/v1/operator/disasters/").json()["results"][0]

    assert "回答待ち" in before and "締切済み" not in before
    status = re.search(r'id="blanket-status">([^<]*)<', page).group(1)
    assert status == "締切済み"
    assert "回答待ち" not in page and "回答待ち" not in dashboard
    assert "締切済み" in dashboard
    assert "最終集計" in page
    history = page[page.index('id="history-h"') :]
    assert "回答のなかった回線を通常速度に戻しました: 2" in history  # the revert run
    assert re.search(r'data-count="confirmed">1<', page)
    assert re.search(r'data-count="reverted">2<', page)
    assert (detail["status"], detail["stage"], detail["stage_display"]) == (
        "active",
        "deadline_passed",
        "締切済み",
    )
    assert (detail["progress"]["confirmed"], detail["progress"]["reverted"]) == (1, 2)
    assert listed["stage"] == "deadline_passed"


def test_the_stage_follows_status_deadline_and_now():
    now = timezone.now()
    blanket = BlanketUpgrade(status="active", deadline=now)

    assert blanket.stage_on(now - timedelta(seconds=1)) == BlanketUpgrade.Stage.WAITING
    assert blanket.stage_on(now) == BlanketUpgrade.Stage.DEADLINE_PASSED
    blanket.status = "ended"
    assert blanket.stage_on(now) == BlanketUpgrade.Stage.ENDED
    blanket.status = "applying"
    assert blanket.stage_on(now) == BlanketUpgrade.Stage.APPLYING
