import json

import pytest

from sylkbox.media.control import (
    AddStream,
    ControlError,
    ControlMessage,
    Direction,
    Dtmf,
    RemoveStream,
    RtpTimeout,
    Shutdown,
    StreamAdded,
    StreamFailed,
    StreamRemoved,
    StreamUpdated,
    UpdateStream,
    WorkerReady,
    from_json,
    to_json,
)

ADD = AddStream(
    room_id="room1", stream_id="s1", local_host="127.0.0.1", local_port=None,
    remote_host="127.0.0.1", remote_port=40000, payload_type=0, codec="PCMU",
    clock_rate=8000, telephone_event_pt=101, direction=Direction.SENDRECV,
)

MESSAGES: list[ControlMessage] = [
    ADD,
    AddStream(
        room_id="r", stream_id="s2", local_host="::1", local_port=50002, remote_host="::1",
        remote_port=0, payload_type=8, codec="PCMA", clock_rate=8000, telephone_event_pt=None,
        direction=Direction.INACTIVE, room_rate=48000,
    ),
    UpdateStream(
        stream_id="s1", remote_host="10.0.0.1", remote_port=4000, payload_type=0, codec="PCMU",
        clock_rate=8000, telephone_event_pt=None, direction=Direction.RECVONLY,
    ),
    RemoveStream(stream_id="s1"),
    Shutdown(),
    WorkerReady(),
    StreamAdded(stream_id="s1", local_port=50000),
    StreamUpdated(stream_id="s1"),
    StreamRemoved(stream_id="s1"),
    StreamFailed(stream_id="s1", reason="cannot bind"),
    RtpTimeout(stream_id="s1"),
    Dtmf(stream_id="s1", digit="#"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: ControlMessage) -> None:
    line = to_json(message)
    assert "\n" not in line
    assert json.loads(line)["type"] == type(message).__name__
    assert from_json(line) == message
    assert from_json(line.encode()) == message


def test_wire_form() -> None:
    assert to_json(StreamAdded(stream_id="a", local_port=50000)) == (
        '{"type":"StreamAdded","stream_id":"a","local_port":50000}'
    )
    decoded = from_json(to_json(ADD))
    assert isinstance(decoded, AddStream) and decoded.direction is Direction.SENDRECV


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        "[]",
        '{"type":"Nope"}',
        '{"stream_id":"a"}',
        '{"type":"RemoveStream"}',
        '{"type":"RemoveStream","stream_id":"a","extra":1}',
        '{"type":"RemoveStream","stream_id":""}',
        '{"type":"StreamAdded","stream_id":"a","local_port":70000}',
        '{"type":"StreamAdded","stream_id":"a","local_port":"5"}',
        to_json(ADD).replace('"sendrecv"', '"sideways"'),
        to_json(ADD).replace('"payload_type":0', '"payload_type":200'),
    ],
)
def test_invalid_lines(line: str) -> None:
    with pytest.raises(ControlError):
        from_json(line)


def test_direction_semantics() -> None:
    assert Direction.SENDRECV.sends and Direction.SENDRECV.receives
    assert Direction.SENDONLY.sends and not Direction.SENDONLY.receives
    assert not Direction.RECVONLY.sends and Direction.RECVONLY.receives
    assert not Direction.INACTIVE.sends and not Direction.INACTIVE.receives
