"""Header hygiene between client, sidecar and model.

Hop-by-hop headers (and any header a `Connection` header names) belong to one
connection and are never forwarded. Clients may not forge the sidecar's own
decision headers. Request shapes used for smuggling are refused even where the
HTTP parser would tolerate them.
"""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

from execguard.sidecar.errors import RequestRejected

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Headers the proxy recomputes itself for the body it actually sends.
RECOMPUTED = frozenset({"content-length", "host", "content-encoding"})

OWN_PREFIX = "x-execguard-"


def _connection_named(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    named: set[str] = set()
    for value in headers.getall("Connection", []):
        named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return named


def forwardable(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], *, drop: Iterable[str] = ()
) -> CIMultiDict[str]:
    """A copy without hop-by-hop, Connection-named, recomputed or execguard headers."""
    excluded = HOP_BY_HOP | RECOMPUTED | _connection_named(headers) | {d.lower() for d in drop}
    result: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in excluded or lowered.startswith(OWN_PREFIX):
            continue
        result.add(name, value)
    return result


def refuse_smuggling_shapes(headers: CIMultiDictProxy[str]) -> None:
    """Refuse ambiguous framing (400) that a front proxy and the model could read differently."""
    lengths = headers.getall("Content-Length", [])
    encodings = headers.getall("Transfer-Encoding", [])
    if len(lengths) > 1:
        raise RequestRejected("duplicate Content-Length headers")
    if lengths and encodings:
        raise RequestRejected("both Content-Length and Transfer-Encoding are present")
    if len(encodings) > 1 or (encodings and encodings[0].strip().lower() != "chunked"):
        raise RequestRejected("Transfer-Encoding must be exactly 'chunked'")
    for name, value in headers.items():
        if any(char in value for char in "\r\n\x00") or any(c in name for c in "\r\n\x00 :"):
            raise RequestRejected(f"header {name!r} contains forbidden characters")
