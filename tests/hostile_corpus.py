"""The hostile inputs of tests/test_hostile_inputs.py: what an attacker or a careless client sent
the running suite in issue 12 (and what was added since). Each entry is raw text, so a value
Python's json would refuse to write (a lone surrogate) or rewrite (1e309) goes out as sent.

Add what you find: a new value here reaches every field, parameter or body of every route."""

HUGE_TEXT = "x" * 60_000  # under the services' 64 KiB body limit, over every field's limit

# JSON values put in place of one body field at a time (the rest of the body well-formed).
FIELD_VALUES = {
    "NUL in a string": '"a\\u0000b"',
    "lone surrogate": '"\\ud800"',
    "lone low surrogate": '"note \\udfff"',
    "offset +16:00": '"2026-03-01T10:00:00+16:00"',
    "offset -23:59": '"2026-03-01T10:00:00-23:59"',
    "year 0001": '"0001-01-01T00:00:00Z"',
    "year 0001 east of UTC": '"0001-01-01T00:00:00+15:59"',
    "year 9999": '"9999-12-31T23:59:59Z"',
    "year 9999 west of UTC": '"9999-12-31T23:59:59-15:59"',
    "day 0001": '"0001-01-01"',
    "day 9999": '"9999-12-31"',
    "400-digit integer": "1" + "0" * 399,
    "negative 400-digit integer": "-1" + "0" * 399,
    "1e309": "1e309",
    "-1e309": "-1e309",
    "bigint + 1": str(2**63),
    "huge string": f'"{HUGE_TEXT}"',
    "object": '{"a": 1}',
    "array": '[1, "a"]',
    "boolean": "true",
    "fraction": "1.5",
    "empty string": '""',
}
# Of those, what no field of any route may accept (the others are merely wrong for most fields:
# an offset of +16:00 is a valid ISO 8601 instant, converted to UTC).
NEVER_ACCEPTED = {"NUL in a string", "lone surrogate", "lone low surrogate", "400-digit integer",
                  "negative 400-digit integer", "1e309", "-1e309", "huge string"}

# Whole request bodies.
BODIES = {
    "array 1000 deep": "[" * 1000 + "]" * 1000,
    "object 1000 deep": '{"a":' * 1000 + "1" + "}" * 1000,
    "array instead of an object": '[{"note": "x"}]',
    "string instead of an object": '"x"',
    "number instead of an object": "1e309",
    "NUL in a key": '{"a\\u0000": 1}',
    "unterminated": '{"note": "',
}

# Query parameter values, percent-encoded as they go on the wire.
QUERY_VALUES = {
    "NUL": "a%00b",
    "lone surrogate (CESU-8 bytes)": "%ED%A0%80",
    "invalid UTF-8": "%FF%FE",
    "offset +16:00": "2026-03-01T10:00:00%2B16:00",
    "offset -23:59": "2026-03-01T10:00:00-23:59",
    "year 0001": "0001-01-01T00:00:00Z",
    "year 0001 east of UTC": "0001-01-01T00:00:00%2B15:59",
    "year 9999 west of UTC": "9999-12-31T23:59:59-15:59",
    "day 9999": "9999-12-31",
    "400-digit integer": "1" + "0" * 399,
    "1e309": "1e309",
    "bigint + 1": str(2**63),
    "negative": "-1",
    "long text": "x" * 3000,
    "empty": "",
}

# Path segments in place of each path parameter.
PATH_VALUES = {
    "NUL": "a%00b",
    "lone surrogate (CESU-8 bytes)": "%ED%A0%80",
    "400-digit integer": "1" + "0" * 399,
    "bigint + 1": str(2**63),
    "1e309": "1e309",
    "negative": "-1",
    "long text": "x" * 2000,
}

# Frames a client may send on the notification WebSocket (within its 4,096-byte frame limit).
SOCKET_FRAMES = {
    "4 KB nested": "[" * 2000 + "]" * 2000,
    "4 KB nested object": '{"a":' * 680 + "1" + "}" * 680,
    "resume with a 400-digit id": '{"type": "resume", "last_id": ' + "1" + "0" * 399 + "}",
    "resume with 1e309": '{"type": "resume", "last_id": 1e309}',
    "lone surrogate": '{"type": "\\ud800"}',
    "NUL": '{"type": "ping\\u0000"}',
    "not JSON": "{{{",
    "array": "[]",
}
