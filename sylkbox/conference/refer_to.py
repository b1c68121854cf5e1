"""Refer-To values of REFERs sent to a conference room (RFC 3515, RFC 4579 section 5.5).

``Refer-To: <sip:bob@example.com>;method=BYE`` asks the focus to remove bob; ``method=INVITE``, or
no method at all, asks it to dial bob in (``interop/BLINK.md`` section 2.2). The method is
accepted wherever clients put it:

* as a Refer-To header parameter after the ``>`` (what Blink sends);
* as the ``method`` URI parameter (RFC 3261 section 19.1.1), ``<sip:bob@h;method=BYE>``;
* as a ``method`` URI header (RFC 3515 section 2.1 examples), ``<sip:bob@h?method=BYE>``.

It is removed from the returned URI text. A missing ``sip:`` prefix is added, as SylkServer does;
other schemes cannot be dialled by the focus and are refused. Anything unparsable raises
:class:`BadReferTo`, which the focus answers with 488.

This is a standalone splitter (name-addr / addr-spec, header parameters, URI parameters and
headers); full URI validation is left to the SIP URI parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = ["BadReferTo", "ReferTarget", "parse_refer_to"]

_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_HOSTPORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)(:[0-9]{1,5})?")
_FORBIDDEN_IN_URI = re.compile(r"[\s<>\"\\]")
_DISPLAY_WORD = re.compile(r"[^\s\"<>;,]+")  # lenient *(token LWS): UTF-8 words are let in
_LWS = " \t"


class BadReferTo(ValueError):
    """The Refer-To value cannot be used; ``reason`` says why (the focus answers 488)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferTarget:
    """What a REFER asks for: the target URI, the method (upper case) and the display name."""

    uri_text: str
    method: str = "INVITE"
    display_name: str | None = None


def parse_refer_to(value: str) -> ReferTarget:
    """Parse a Refer-To header value (RFC 3515 section 2.1) into a :class:`ReferTarget`."""
    value = value.strip(_LWS)
    if not value:
        raise BadReferTo("empty Refer-To")
    if any(char in value for char in "\r\n\x00"):
        raise BadReferTo("control characters in Refer-To")
    display_name, uri, rest = _split_name_addr(value)
    methods = _header_param_methods(rest)
    uri, uri_methods = _normalise_uri(uri)
    methods += uri_methods
    if len({method.upper() for method in methods}) > 1:
        raise BadReferTo(f"conflicting methods {methods!r}")
    method = methods[0].upper() if methods else "INVITE"
    if not _TOKEN.fullmatch(method):
        raise BadReferTo(f"bad method {method!r}")
    return ReferTarget(uri_text=uri, method=method, display_name=display_name)


def _split_name_addr(value: str) -> tuple[str | None, str, str]:
    """Split into (display name, URI text, header parameter text) (RFC 3261 section 20.10)."""
    display_name: str | None = None
    if value.startswith('"'):
        end, display_name = _quoted_string(value)
        rest = value[end:].lstrip(_LWS)
        if not rest.startswith("<"):
            raise BadReferTo("quoted display name not followed by <URI>")
        value = rest
    less_than = value.find("<")
    if less_than < 0:
        # addr-spec: everything after the first ';' is header parameters.
        if '"' in value or ">" in value:
            raise BadReferTo("misplaced quote or '>'")
        uri, semicolon, params = value.partition(";")
        return None, uri.strip(_LWS), semicolon + params
    if display_name is None and less_than > 0:
        tokens = value[:less_than].split()
        if not all(_DISPLAY_WORD.fullmatch(token) for token in tokens):
            raise BadReferTo("bad display name")
        display_name = " ".join(tokens)
    greater_than = value.find(">", less_than + 1)
    if greater_than < 0:
        raise BadReferTo("unterminated <URI>")
    return display_name or None, value[less_than + 1 : greater_than], value[greater_than + 1 :]


def _quoted_string(value: str) -> tuple[int, str]:
    """Parse the quoted-string at the start of ``value``; return (end index, unescaped text)."""
    text: list[str] = []
    index = 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            text.append(value[index + 1])
            index += 2
            continue
        if char == '"':
            return index + 1, "".join(text)
        text.append(char)
        index += 1
    raise BadReferTo("unterminated quoted string")


def _header_param_methods(rest: str) -> list[str]:
    """Return the ``method`` values among the Refer-To header parameters in ``rest``."""
    rest = rest.strip(_LWS)
    if not rest:
        return []
    if not rest.startswith(";"):
        raise BadReferTo(f"unexpected text after URI: {rest[:40]!r}")
    methods: list[str] = []
    for item in _split_params(rest[1:]):
        name, equals, raw = item.partition("=")
        name = name.strip(_LWS)
        raw = raw.strip(_LWS)
        if not _TOKEN.fullmatch(name):
            raise BadReferTo(f"bad header parameter {item!r}")
        if raw.startswith('"'):
            end, unquoted = _quoted_string(raw)
            if raw[end:]:
                raise BadReferTo(f"bad header parameter {item!r}")
            raw = unquoted
        elif equals and not re.fullmatch(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+", raw):
            raise BadReferTo(f"bad header parameter value {item!r}")
        if name.lower() == "method":
            methods.append(raw)
    return methods


def _split_params(text: str) -> list[str]:
    """Split ``a;b="x;y";c`` on semicolons outside quoted strings."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise BadReferTo("unterminated quoted string")
    items.append("".join(current))
    if any(not item.strip(_LWS) for item in items):
        raise BadReferTo("empty header parameter")
    return items


def _normalise_uri(uri: str) -> tuple[str, list[str]]:
    """Add ``sip:`` if missing, check the shape, and pull ``method`` out of params and headers."""
    uri = uri.strip(_LWS)
    if not uri:
        raise BadReferTo("empty URI")
    if _FORBIDDEN_IN_URI.search(uri):
        raise BadReferTo("whitespace, quote or angle bracket inside the URI")
    scheme_match = _SCHEME.match(uri)
    scheme = scheme_match.group(1).lower() if scheme_match else None
    if scheme in {"sip", "sips"} and scheme_match is not None:
        rest = uri[scheme_match.end() :]
    elif scheme_match is not None and not uri[scheme_match.end() :][:1].isdigit():
        raise BadReferTo(f"unsupported URI scheme {scheme_match.group(1)!r}")
    else:
        scheme, rest = "sip", uri  # no scheme ("host:port" is a port, not a scheme)
    head, question, headers = rest.partition("?")
    at = head.rfind("@")
    userinfo, hostpart = (head[: at + 1], head[at + 1 :]) if at >= 0 else ("", head)
    if userinfo == "@":
        raise BadReferTo("empty user part")
    hostport, *params = hostpart.split(";")
    if not _HOSTPORT.fullmatch(hostport):
        raise BadReferTo(f"bad host {hostport!r}")
    methods: list[str] = []
    kept_params: list[str] = []
    for param in params:
        name, _, param_value = param.partition("=")
        if not name:
            raise BadReferTo("empty URI parameter")
        if name.lower() == "method":
            methods.append(unquote(param_value))
        else:
            kept_params.append(param)
    kept_headers: list[str] = []
    if question:
        for header in headers.split("&"):
            name, equals, header_value = header.partition("=")
            if not name or not equals:
                raise BadReferTo(f"bad URI header {header!r}")
            if unquote(name).lower() == "method":
                methods.append(unquote(header_value))
            else:
                kept_headers.append(header)
    text = f"{scheme}:{userinfo}{hostport}" + "".join(f";{param}" for param in kept_params)
    if kept_headers:
        text += "?" + "&".join(kept_headers)
    return text, methods
