"""`jetgate events tail`'s readable lines: one per event kind, the rest as the data's JSON."""
from __future__ import annotations

import json

from jetgate.event_tail import human
from tests.jetgate.test_event_docs import SAMPLES


def test_every_published_type_has_a_readable_line() -> None:
    for event_type, event in SAMPLES.items():
        line = human(json.loads(event.model_dump_json()))
        assert line.startswith(f"{event.time.isoformat().replace('+00:00', 'Z')} {event_type} org={event.org_id} ")
        assert "{" not in line, line  # a line of its own, not the JSON fallback
    assert human(json.loads(SAMPLES["provider.health"].model_dump_json())).endswith(
        "openai/gpt-4o unhealthy after 3 failures (upstream_error 502) on host:1")
    assert human({"type": "model.retired", "data": {"up": True}}).endswith('{"up": true}')
