"""A body's events are its exact bytes: the decision is the runtime's, on what was sent."""

from __future__ import annotations

import json

import pytest

from serve.errors import RequestRefused
from serve.items import split_items


@pytest.mark.parametrize("body", [b'{"a": 1}', b"", b"  ", b"{not json", b'"text"', b"null"])
def test_a_body_that_is_not_an_array_is_one_event_as_sent(body: bytes) -> None:
    items = split_items(body, 10)
    assert items.values == [body]
    assert not items.is_list


def test_array_items_are_sliced_out_untouched() -> None:
    items = [
        b'{"a": 1, "b": [1, 2, {"c": "]"}]}',
        b'{"s": "a, \\"quoted\\" ]} string"}',
        b"NaN",
        b'{"a":1,"a":2}',
        b"[1,2]",
        b'"text"',
        b"1e400",
    ]
    body = b" \n[ " + b" ,\r\n\t".join(items) + b" ] \n"
    split = split_items(body, 100)
    assert split.is_list
    assert split.values == items


def test_non_ascii_and_invalid_utf8_bytes_come_back_unchanged() -> None:
    items = ['{"s": "é ü 😀"}'.encode(), b'{"s": "\xff\xfe"}', b'{"s": "\xed\xa0\x80"}']
    assert split_items(b"[" + b",".join(items) + b"]", 10).values == items


def test_an_empty_array_has_no_events() -> None:
    assert split_items(b"[ ]", 10).values == []


@pytest.mark.parametrize(
    "body",
    [
        b"[",
        b'[{"a": 1}',
        b'[{"a": 1} {"b": 2}]',
        b"[1,]",
        b"[,1]",
        b"[1] trailing",
        b'[{"a": "unterminated]',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_an_array_that_cannot_be_split_is_refused_whole(body: bytes) -> None:
    with pytest.raises(RequestRefused) as refused:
        split_items(body, 10)
    assert (refused.value.status, refused.value.error_type) == (422, "invalid_json")


def test_more_items_than_allowed_are_refused_without_reading_them_all() -> None:
    body = json.dumps([{"n": i} for i in range(50)]).encode()
    assert len(split_items(body, 50).values) == 50
    with pytest.raises(RequestRefused) as refused:
        split_items(body, 49)
    assert (refused.value.status, refused.value.error_type) == (413, "too_many_events")
