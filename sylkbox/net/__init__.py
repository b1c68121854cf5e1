"""sylkbox.net: asyncio transport adapters, the only place with sockets for SIP.

`SipTransports` owns the UDP, TCP and TLS listeners and connections; `ensure_certificate`
provides the self-signed certificate for TLS.
"""

from sylkbox.net.certs import ensure_certificate
from sylkbox.net.transport import (
    TRANSPORTS,
    ConnectionInfo,
    MessageHandler,
    SendErrorHandler,
    SipTransports,
    TransportLimits,
    default_client_ssl_context,
)
from sylkbox.net.udp import Address

__all__ = [
    "TRANSPORTS",
    "Address",
    "ConnectionInfo",
    "MessageHandler",
    "SendErrorHandler",
    "SipTransports",
    "TransportLimits",
    "default_client_ssl_context",
    "ensure_certificate",
]
