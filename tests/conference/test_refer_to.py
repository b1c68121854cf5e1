"""Tests for sylkbox.conference.refer_to (Refer-To values, BLINK.md 2.2, RFC 3515/4579)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sylkbox.conference.refer_to import BadReferTo, ReferTarget, parse_refer_to


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # What Blink sends (sipsimple ReferralHandler): method as a header parameter.
        ("<sip:bob@192.168.1.30>;method=INVITE", ReferTarget(uri_text="sip:bob@192.168.1.30")),
        (
            "<sip:bob@192.168.1.30>;method=BYE",
            ReferTarget(uri_text="sip:bob@192.168.1.30", method="BYE"),
        ),
        ("<sip:bob@192.168.1.30>", ReferTarget(uri_text="sip:bob@192.168.1.30")),
        ("  <sip:bob@h> ; Method = bye ", ReferTarget(uri_text="sip:bob@h", method="BYE")),
        # RFC 3515 URI header and RFC 3261 URI parameter forms.
        ("<sip:bob@h?method=BYE>", ReferTarget(uri_text="sip:bob@h", method="BYE")),
        (
            "<sip:bob@h;transport=tcp?Method=BYE&Subject=hi%20there>",
            ReferTarget(uri_text="sip:bob@h;transport=tcp?Subject=hi%20there", method="BYE"),
        ),
        (
            "<sip:carol@chicago.example.com;method=BYE>",
            ReferTarget(uri_text="sip:carol@chicago.example.com", method="BYE"),
        ),
        ("<sip:bob@h;method=BYE>;method=BYE", ReferTarget(uri_text="sip:bob@h", method="BYE")),
        # addr-spec: parameters after the URI are header parameters.
        ("sip:bob@h;method=BYE", ReferTarget(uri_text="sip:bob@h", method="BYE")),
        ("sip:bob@h:5062", ReferTarget(uri_text="sip:bob@h:5062")),
        # sip: added when missing; scheme normalised.
        ("bob@192.168.1.30", ReferTarget(uri_text="sip:bob@192.168.1.30")),
        ("<bob@h>;method=BYE", ReferTarget(uri_text="sip:bob@h", method="BYE")),
        ("h.example.com:5060", ReferTarget(uri_text="sip:h.example.com:5060")),
        ("SIPS:bob@h", ReferTarget(uri_text="sips:bob@h")),
        (
            "<sip:[2001:db8::1]:5070;transport=tls>",
            ReferTarget(uri_text="sip:[2001:db8::1]:5070;transport=tls"),
        ),
        ("<sip:alice;day=tue@h>", ReferTarget(uri_text="sip:alice;day=tue@h")),
        # Display names, quoted (with escapes) or plain; other header params are ignored.
        (
            '"Bob \\"B\\" <x>" <sip:bob@h>;method=INVITE;foo="a;b"',
            ReferTarget(uri_text="sip:bob@h", display_name='Bob "B" <x>'),
        ),
        ("Bob  Smith <sip:bob@h>", ReferTarget(uri_text="sip:bob@h", display_name="Bob Smith")),
        ("J\u00fcrgen <sip:j@h>", ReferTarget(uri_text="sip:j@h", display_name="J\u00fcrgen")),
        ('"" <sip:bob@h>', ReferTarget(uri_text="sip:bob@h")),
        ("<sip:bob@h>;method=REFER", ReferTarget(uri_text="sip:bob@h", method="REFER")),
    ],
)
def test_parse(value: str, expected: ReferTarget) -> None:
    assert parse_refer_to(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("<>", "empty URI"),
        ("<sip:bob@h", "unterminated"),
        ('"Bob <sip:bob@h>', "unterminated quoted"),
        ('"Bob" sip:bob@h', "not followed"),
        ("<sip:bob@h> junk", "unexpected text"),
        ("<sip:bob@h>;;method=BYE", "empty header parameter"),
        ("<sip:bob@h>;method=BYE;method=INVITE", "conflicting"),
        ("<sip:bob@h?method=BYE>;method=INVITE", "conflicting"),
        ("<sip:bob@h>;method=B@D", "bad header parameter value"),
        ('<sip:bob@h>;x="unterminated', "unterminated quoted"),
        ('<sip:bob@h>;x="a"b', "bad header parameter"),
        ("<sip:bob@h?method=B%20YE>", "bad method"),
        ("<tel:+4930123>", "unsupported URI scheme"),
        ("mailto:bob@h", "unsupported URI scheme"),
        ("<sip:bob @h>", "whitespace"),
        ("<sip:@h>", "empty user"),
        ("<sip:bob@>", "bad host"),
        ("<sip:bob@h:99999999>", "bad host"),
        ("<sip:bob@h;;x>", "empty URI parameter"),
        ("<sip:bob@h?x>", "bad URI header"),
        ("sip:bob@h>", "misplaced"),
        ("sip:bob@h\r\nX: y", "control"),
        ("B<ob <sip:bob@h>", "whitespace"),
        ("sip:alice;day=tue@h", "bad header parameter value"),  # needs <> (RFC 3261 20.10)
        ("Bo;b <sip:bob@h>", "bad display name"),
    ],
)
def test_errors(value: str, reason: str) -> None:
    with pytest.raises(BadReferTo) as info:
        parse_refer_to(value)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


@given(st.text(max_size=60))
def test_never_raises_anything_else(value: str) -> None:
    try:
        target = parse_refer_to(value)
    except BadReferTo:
        return
    assert target.uri_text.startswith(("sip:", "sips:"))
    assert target.method == target.method.upper()
