"""`jetgate events tail`'s readable lines: one per event kind, the rest as the data's JSON."""
from __future__ import annotations

import json

from jetgate.events_cmd import human
from tests.jetgate.test_event_docs import SAMPLES


def test_every_published_type_has_a_readable_line() -> None:
    for event_type, event in SAMPLES.items():
        line = human(json.loads(event.model_dump_json()))
        assert line.startswith(f"{event.time.isoformat().replace('+00:00', 'Z')} {event_type} org=acme ")
        assert "{" not in line, line  # a line of its own, not the JSON fallback
    assert human({"type": "provider.health", "data": {"up": True}}).endswith('{"up": true}')
