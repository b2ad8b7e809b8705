"""`/metrics`, `/healthz`, `/readyz`: the real endpoint on a free port, after a scripted conversation.

The conversation is played through the local playground's driver on a runtime built as the bot
builds it; the endpoint is the one `concierge run` starts (`Runtime.open_endpoint`); the text it
serves is read back with prometheus_client's own parser.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

import concierge.metrics
import concierge.relay
from adapters.local.platform import LocalPlatform
from adapters.local.playground import LocalDriver
from concierge.bootstrap import build_runtime
from concierge.database import upgrade
from concierge.inbound import MemberMessage
from concierge.platform import PlatformDown, RateLimited, Unreachable
from concierge.records import OutboxItem
from concierge.serve import serve_connections
from concierge.testing.postgres import PostgresServer
from tests.conftest import make_settings
from tests.slack.conftest import sqlite_url  # noqa: F401 - a migrated SQLite database
from tests.support.desk import failing_once
from tests.support.net import wait_for


@pytest.fixture(autouse=True)
def no_backlog_cache(monkeypatch):
    monkeypatch.setattr(concierge.metrics, "CACHE_S", 0.0)  # every scrape reads the backlog afresh


async def fetch(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, by name and labels."""
    status, text = await fetch(port, "/metrics")
    assert status == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def sent_rows(runtime, platform: str) -> int:
    table = OutboxItem.__table__
    return runtime.db.run_sync(lambda session: session.execute(
        select(func.count()).where(table.c.status == "sent", table.c.platform == platform)).scalar_one())


@pytest.fixture
async def served(database_url, clock):
    """A runtime with the endpoint on a free port, the playground driver, and its platform."""
    platform = LocalPlatform()
    settings = make_settings(database_url, metrics_port=0, inbox_max_attempts=2)
    runtime = build_runtime(settings, {"local": platform}, clock=clock)
    await runtime.open_endpoint()
    driver = LocalDriver(runtime, platform, settings.staff_channel, echo=lambda _line: None)
    try:
        yield runtime, driver, platform
    finally:
        await runtime.close_endpoint()
        runtime.close()


async def test_the_endpoint_serves_the_counters_of_a_scripted_conversation(served, clock, monkeypatch):
    runtime, driver, platform = served
    port = runtime.endpoint.port
    for line in ("admin> /concierge member add alice premium", "admin> /concierge expert add bob nutrition",
                 "alice> What should I eat before a race? nutrition"):
        await driver.line(line)
    clock.advance(600)
    await driver.line("bob@1> Oats, two hours before.")
    samples = await scrape(port)
    assert value(samples, "concierge_inbound_events_total", platform="local", kind="command_invoked",
                 outcome="done") == 2
    assert value(samples, "concierge_inbound_events_total", platform="local", kind="member_message",
                 outcome="done") == 1
    assert value(samples, "concierge_inbound_events_total", platform="local", kind="staff_reply", outcome="done") == 1
    assert value(samples, "concierge_relays_total", direction="to_staff") == 1
    assert value(samples, "concierge_relays_total", direction="to_member") == 1
    # The first answer, 600 s after the question: in the 900 s bucket, not in the 300 s one.
    assert value(samples, "concierge_first_response_seconds_count", specialty="nutrition") == 1
    assert value(samples, "concierge_first_response_seconds_sum", specialty="nutrition") == 600
    assert value(samples, "concierge_first_response_seconds_bucket", specialty="nutrition", le="300.0") == 0
    assert value(samples, "concierge_first_response_seconds_bucket", specialty="nutrition", le="900.0") == 1
    assert value(samples, "concierge_sends_total", platform="local", outcome="sent") == sent_rows(runtime, "local") > 0
    assert samples[("concierge_outbox_depth", ())] == 0
    assert samples[("concierge_outbox_oldest_unsent_age_seconds", ())] == 0

    # The platform says "slow down" (a 429): the message waits, unsent, and ages.
    platform.fail_next(RateLimited(30))
    await driver.line("alice> And after the race?")
    clock.advance(20)
    samples = await scrape(port)
    assert value(samples, "concierge_platform_429_total", platform="local") == 1
    assert value(samples, "concierge_sends_total", platform="local", outcome="rate_limited") == 1
    assert value(samples, "concierge_outbox_depth") == 1
    assert value(samples, "concierge_outbox_oldest_unsent_age_seconds") == 20

    # A send that fails for now is retried; one that cannot reach the member fails (staff are told).
    clock.advance(20)
    platform.fail_next(PlatformDown("503"))
    await driver.line("bob@1> Protein and water.")
    clock.advance(10)
    platform.fail_next(Unreachable("the member left"))
    await runtime.drain()
    samples = await scrape(port)
    assert value(samples, "concierge_sends_total", platform="local", outcome="retried") == 1
    assert value(samples, "concierge_sends_total", platform="local", outcome="failed") == 1
    assert value(samples, "concierge_sends_total", platform="local", outcome="sent") == sent_rows(runtime, "local")
    assert value(samples, "concierge_relays_total", direction="to_member") == 2
    assert value(samples, "concierge_first_response_seconds_count", specialty="nutrition") == 1, "first answers only"
    assert value(samples, "concierge_outbox_depth") == 0

    # An inbound message whose processing keeps failing is given up on after CONCIERGE_INBOX_MAX_ATTEMPTS.
    failing_once(monkeypatch, times=10)
    receipt = await runtime.concierge.receive(MemberMessage("m-fails", LocalPlatform.dm_address("alice"), "Hello?"))
    for _ in range(3):
        clock.advance(600)
        await runtime.drain()
    samples = await scrape(port)
    assert receipt.status == "queued"
    assert value(samples, "concierge_inbound_events_total", platform="local", kind="member_message",
                 outcome="queued") == 1
    assert value(samples, "concierge_inbox_failures_total", platform="local") == 1


async def test_healthz_and_readyz_answer_while_the_database_is_up(served):
    runtime, _driver, _platform = served
    assert await fetch(runtime.endpoint.port, "/healthz") == (200, "ok")
    assert await fetch(runtime.endpoint.port, "/readyz") == (200, "ready")


async def test_readyz_fails_when_the_database_is_stopped(clock):
    server = PostgresServer().start()
    stopped = False
    try:
        url = server.create_database("readiness")
        upgrade(url)
        runtime = build_runtime(make_settings(url, metrics_port=0), {"local": LocalPlatform()}, clock=clock)
        await runtime.open_endpoint()
        try:
            port = runtime.endpoint.port
            assert await fetch(port, "/readyz") == (200, "ready")
            assert "concierge_outbox_depth" in (await fetch(port, "/metrics"))[1]
            server.stop()
            stopped = True
            status, text = await fetch(port, "/readyz")
            assert status == 503 and text.startswith("database: unreachable (OperationalError)")
            assert "postgres@" not in text and str(server.port) not in text, "no URL in the answer"
            assert await fetch(port, "/healthz") == (200, "ok"), "the process itself is alive"
            status, text = await fetch(port, "/metrics")  # the counters still; the backlog is left out
            assert status == 200 and "concierge_inbound_events_total" in text and "concierge_outbox_depth" not in text
        finally:
            await runtime.close_endpoint()
            runtime.close()
    finally:
        if not stopped:
            server.stop()


class Switchable:
    """A platform's connection whose `connected()` the test turns on and off (what Slack's and
    Discord's connections say from their socket and gateway state)."""

    def __init__(self) -> None:
        self.platform = LocalPlatform(name="local")
        self.is_connected = True
        self.runtime = None

    async def start(self, runtime) -> None:  # noqa: ANN001
        self.runtime = runtime

    async def wait(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def connected(self) -> bool:
        return self.is_connected


async def test_readyz_fails_while_a_platform_is_not_connected(sqlite_url):  # noqa: F811 - the fixture
    connection = Switchable()
    settings = make_settings(sqlite_url, metrics_port=0)
    serving = asyncio.create_task(serve_connections(settings, [connection]))
    try:
        await wait_for(lambda: connection.runtime is not None and connection.runtime.endpoint is not None)
        port = connection.runtime.endpoint.port
        assert await fetch(port, "/readyz") == (200, "ready")
        connection.is_connected = False
        assert await fetch(port, "/readyz") == (503, "local: not connected\n")
        connection.is_connected = True
        assert await fetch(port, "/readyz") == (200, "ready")
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
    with pytest.raises(aiohttp.ClientConnectionError):  # a clean stop closes the endpoint too
        await fetch(port, "/healthz")


async def test_a_send_that_spends_its_last_attempt_counts_as_failed(served, clock):
    runtime, driver, platform = served
    for line in ("admin> /concierge member add alice premium", "admin> /concierge expert add bob nutrition"):
        await driver.line(line)
    platform.fail_next(*[PlatformDown("503")] * 4)  # make_settings: outbox_max_attempts=4
    await driver.line("alice> Hello?")
    for _ in range(4):
        clock.advance(400)
        await runtime.drain()
    samples = await scrape(runtime.endpoint.port)
    assert value(samples, "concierge_sends_total", platform="local", outcome="retried") == 3
    assert value(samples, "concierge_sends_total", platform="local", outcome="failed") == 1


async def test_a_relay_whose_transaction_rolls_back_is_not_counted(served, clock, monkeypatch):
    runtime, driver, _platform = served
    for line in ("admin> /concierge member add alice premium", "admin> /concierge expert add bob nutrition"):
        await driver.line(line)
    real = concierge.relay.record_message
    monkeypatch.setattr(concierge.relay, "record_message", lambda *args, **kwargs: 1 / 0)  # after the count
    receipt = await runtime.concierge.receive(MemberMessage("m1", LocalPlatform.dm_address("alice"), "Hello?"))
    assert receipt.status == "queued"
    assert value(await scrape(runtime.endpoint.port), "concierge_relays_total", direction="to_staff") == 0
    monkeypatch.setattr(concierge.relay, "record_message", real)
    clock.advance(60)
    await runtime.drain()  # the inbox worker processes it again, and it commits
    assert value(await scrape(runtime.endpoint.port), "concierge_relays_total", direction="to_staff") == 1


def test_every_outcome_of_the_outbox_has_its_name_in_the_sends_counter():
    from typing import get_args

    from concierge.outbox.outcome import Outcome

    assert {kind.__name__ for kind in get_args(Outcome)} == set(concierge.metrics.OUTCOME_NAMES)
    assert sorted(concierge.metrics.OUTCOME_NAMES.values()) == sorted(concierge.metrics.SEND_OUTCOMES)


async def test_a_backlog_read_that_hangs_leaves_the_gauges_out_instead_of_holding_the_scrape(served):
    import time

    runtime, _driver, _platform = served
    backlog = runtime.metrics.backlog
    read = backlog.read
    backlog.read = lambda: (time.sleep(2.0), read())[1]  # a database that does not answer for a while
    runtime.health.timeout_s = 0.3
    started = time.monotonic()
    status, text = await fetch(runtime.endpoint.port, "/metrics")
    assert time.monotonic() - started < 1.5
    assert status == 200 and "concierge_inbound_events_total" in text and "concierge_outbox_depth" not in text
    calls = []
    backlog.read = lambda: calls.append(1) or read()
    assert "concierge_outbox_depth" not in (await fetch(runtime.endpoint.port, "/metrics"))[1]
    await asyncio.sleep(2.0)  # the read in flight ends; the next scrape has the gauges again
    assert calls == [], "no second read was started (or left waiting) while one hung"
    backlog.read = read
    assert ("concierge_outbox_depth", ()) in await scrape(runtime.endpoint.port)
