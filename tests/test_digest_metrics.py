"""Digest deliveries are counted when they reach the member; a send stopped by an unsubscribe is `cancelled`."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.desk import an_edition_due_for_alice, digest_dms


def sample(runtime, name: str, **labels: str) -> float:  # noqa: ANN001
    """One sample as /metrics serves it (the runtime's registry, in the text format, parsed back)."""
    text = generate_latest(runtime.metrics.registry).decode()
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and s.labels == labels)


async def test_a_delivered_edition_is_counted(desk, platform, runtime, clock, ticker):  # noqa: F811
    await an_edition_due_for_alice(desk, clock)
    await ticker.tick()
    await desk.settle()
    assert len(digest_dms(platform, "alice")) == 1
    assert sample(runtime, "concierge_digest_deliveries_total", platform="local") == 1
    assert sample(runtime, "concierge_sends_total", platform="local", outcome="cancelled") == 0


async def test_a_claimed_edition_stopped_by_an_unsubscribe_is_cancelled_not_delivered(desk, platform, runtime, clock,
                                                                                     ticker):  # noqa: F811
    await an_edition_due_for_alice(desk, clock)
    await ticker.tick()
    claimed = await runtime.db.run(runtime.dispatcher._claim_due)
    await desk.command("alice", "unsubscribe nutrition-tips")
    runtime.dispatcher.hand_over(claimed, set())  # a worker holding the claimed send tries it now
    await desk.settle()
    assert digest_dms(platform, "alice") == []
    assert sample(runtime, "concierge_sends_total", platform="local", outcome="cancelled") == 1
    assert sample(runtime, "concierge_digest_deliveries_total", platform="local") == 0
