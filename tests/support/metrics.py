"""Reading a counter back as /metrics serves it (the runtime's registry, in the text format, parsed back)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families


def caught_up_on(runtime, platform: str) -> float:  # noqa: ANN001
    """The counter as /metrics would serve it (the runtime's registry, in the text format, parsed back)."""
    text = generate_latest(runtime.metrics.registry).decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "concierge_catch_up_events_total" and sample.labels == {"platform": platform})
