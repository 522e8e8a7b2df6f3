"""The check-in API's throttle counts per client address, as the proxies saw it, in the
cache every web process shares (issue 10)."""

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from incidents.api import CheckInThrottle
from incidents.services import issue_check_in_token
from tests.factories import SiteFactory
from tests.test_project import PRODUCTION_ENV, manage

pytestmark = pytest.mark.django_db
RATE = 30  # CheckInThrottle.rate, per minute


def check_in_with_rotating_forwarded_for(token, *, last_hop: str | None) -> list[int]:
    api = APIClient()
    answers = []
    for n in range(RATE + 5):
        forged = f"198.51.100.{n}"
        forwarded = f"{forged}, {last_hop}" if last_hop else forged
        response = api.post(
            "/api/v1/check-in/",
            {},
            HTTP_AUTHORIZATION=f"SiteToken {token}",
            HTTP_X_FORWARDED_FOR=forwarded,
        )
        answers.append(response.status_code)
    return answers


def rest_framework_with(num_proxies: int) -> dict:
    return {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}


@pytest.mark.parametrize(
    ("proxies", "last_hop"), [(0, None), (1, "203.0.113.9")], ids=["no-proxy", "one-proxy"]
)
def test_rotating_x_forwarded_for_does_not_escape_the_throttle(proxies, last_hop):
    token = issue_check_in_token(site=SiteFactory(), now=timezone.now())

    if proxies == settings.TRUSTED_PROXY_COUNT:  # the settings as they are
        answers = check_in_with_rotating_forwarded_for(token, last_hop=last_hop)
    else:  # the settings as TRUSTED_PROXY_COUNT=1 makes them (see the test below)
        with override_settings(
            TRUSTED_PROXY_COUNT=proxies, REST_FRAMEWORK=rest_framework_with(proxies)
        ):
            answers = check_in_with_rotating_forwarded_for(token, last_hop=last_hop)

    assert answers[:RATE] == [201] * RATE
    assert set(answers[RATE:]) == {429}


def test_production_reads_the_proxies_from_trusted_proxy_count_and_counts_in_redis():
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "from django.conf import settings as s; "
        "print(s.REST_FRAMEWORK['NUM_PROXIES'], s.CACHES['default']['BACKEND'],"
        " s.CACHES['default']['LOCATION'])",
        env={**PRODUCTION_ENV, "TRUSTED_PROXY_COUNT": "1"},
    )

    assert result.stdout.split() == [
        "1",
        "django.core.cache.backends.redis.RedisCache",
        PRODUCTION_ENV["CELERY_BROKER_URL"],
    ], result.stderr


def test_two_web_processes_share_one_count(rf):
    # Two cache clients, as two gunicorn workers each have their own.
    first_process, second_process = (caches.create_connection("default") for _ in range(2))
    # Local memory would pass this test inside one process and fail across workers.
    assert not isinstance(first_process, LocMemCache)
    request = rf.post("/api/v1/check-in/", REMOTE_ADDR="192.0.2.7")
    request.user = AnonymousUser()

    def allowed(cache) -> bool:
        throttle = CheckInThrottle()
        throttle.cache = cache
        return throttle.allow_request(request, view=None)

    answers = [allowed(first_process) for _ in range(RATE // 2)]
    answers += [allowed(second_process) for _ in range(RATE // 2)]

    assert all(answers)
    assert not allowed(first_process)
    assert not allowed(second_process)
