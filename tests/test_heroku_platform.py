"""Heroku's Platform API limits as ``mlem_lib.deploy.heroku_api`` meets them: ranges with
206/Next-Range, 429 with RateLimit-Remaining, 403 for apps of other accounts, unreachable
API. Against the Heroku double over real HTTP on 127.0.0.1 (no dynos, no Docker)."""

from __future__ import annotations

import itertools

import pytest

from mlem_lib.deploy.heroku_api import HerokuAPI
from mlem_lib.errors import (
    AppNameTakenError,
    CredentialsError,
    NetworkError,
    TargetNotReadyError,
    TargetUnreachableError,
)
from tests._fixtures.deploy import HEROKU_TEST_KEY, OTHERS_APP
from tests.conftest import free_port


@pytest.fixture
def platform():
    from tests.doubles.heroku_api import HerokuDouble

    double = HerokuDouble(HEROKU_TEST_KEY, others={OTHERS_APP})
    double.start()
    yield double
    double.stop()


def _api(double, **options) -> HerokuAPI:
    return HerokuAPI(double.url, HEROKU_TEST_KEY, **options)


def test_lists_follow_next_range_to_the_end(platform):
    import httpx

    platform.seed_app("busy-app", releases=2300)
    # what one request without a Range header gets: 200 items of 2300, in id order
    first = httpx.get(f"{platform.url}/apps/busy-app/releases",
                      headers={**_api(platform).headers})
    assert first.status_code == 206 and len(first.json()) == 200 and "Next-Range" in first.headers

    api = _api(platform)
    releases = api.releases("busy-app")
    assert [r["version"] for r in releases] == list(range(1, 2301))
    assert platform.called("GET", "/apps/busy-app/releases") == 1 + 3  # 1000 + 1000 + 300
    assert [r["version"] for r in api.latest_releases("busy-app", 2)] == [2300, 2299]
    assert platform.called("GET", "/apps/busy-app/releases") == 1 + 3 + 1
    api.close()


def test_rate_limit_is_waited_out_with_growing_pauses(platform):
    platform.seed_app("limited-app")
    lines: list[str] = []
    api = _api(platform, backoff=0.05, progress=lines.append)
    platform.rate_limit(remaining=2, refill_per_second=1.0)
    for _ in range(4):
        assert api.get_app("limited-app")["name"] == "limited-app"
    statuses = [status for _, _, _, status in platform.calls]
    assert statuses.count(429) >= 2 and statuses[-1] == 200
    pauses = [float(line.rsplit(" ", 1)[-1].rstrip("s")) for line in lines]
    assert pauses[:2] == [0.05, 0.1] and pauses == sorted(pauses)
    assert api.remaining == 0
    # each retry comes one pause after its 429, not two (it used to wait twice)
    after_429 = [b[0] - a[0] for a, b in itertools.pairwise(platform.calls) if a[3] == 429]
    assert len(after_429) == len(pauses)
    for gap, pause in zip(after_429, pauses, strict=True):
        assert pause <= gap < 1.5 * pause + 0.1, (after_429, pauses)

    platform.rate_limit(remaining=0, refill_per_second=0.0)
    quick = _api(platform, backoff=0.05, rate_limit_wait=0.5)
    with pytest.raises(TargetNotReadyError, match="rate limit"):
        quick.get_app("limited-app")
    api.close()
    quick.close()


def test_an_app_of_another_account_is_a_taken_name(platform):
    api = _api(platform)
    with pytest.raises(AppNameTakenError, match="field 'app'"):
        api.get_app(OTHERS_APP)  # Heroku answers 403 forbidden, not 404
    with pytest.raises(AppNameTakenError, match="field 'app'"):
        api.create_app(OTHERS_APP, "us")  # 422 "already taken"
    with pytest.raises(CredentialsError, match="401 unauthorized"):
        HerokuAPI(platform.url, "wrong-key").get_app("any-app")
    api.close()


def test_an_unreachable_api_is_one_line():
    api = HerokuAPI(f"http://127.0.0.1:{free_port()}", HEROKU_TEST_KEY)
    with pytest.raises(TargetUnreachableError, match="GET /apps/x-app failed") as err:
        api.get_app("x-app")
    assert "\n" not in str(err.value) and isinstance(err.value, NetworkError)
