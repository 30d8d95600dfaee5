import uuid

from routing.engine.trace import trace_id_new


def test_trace_ids_are_distinct_version_4_uuids_in_hex():
    ids = [trace_id_new() for _ in range(2000)]

    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert (parsed.hex, parsed.version, parsed.variant) == (value, 4, uuid.RFC_4122)
