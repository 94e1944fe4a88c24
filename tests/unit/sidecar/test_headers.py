"""Header hygiene between client, sidecar and model."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from execguard.sidecar.errors import RequestRejected
from execguard.sidecar.proxy.headers import forwardable, refuse_smuggling_shapes


def test_hop_by_hop_connection_named_and_own_headers_are_not_forwarded() -> None:
    headers = CIMultiDict(
        [
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("X-Execguard-Decision-Id", "forged"),
            ("Authorization", "Bearer t"),
            ("Accept", "application/json"),
        ]
    )
    assert dict(forwardable(headers)) == {"Authorization": "Bearer t", "Accept": "application/json"}


@pytest.mark.parametrize(
    "pairs",
    [
        [("Content-Length", "1"), ("Content-Length", "1")],
        [("Content-Length", "1"), ("Transfer-Encoding", "chunked")],
        [("Transfer-Encoding", "chunked, identity")],
        [("X-A", "a\nb")],
    ],
)
def test_ambiguous_framing_is_refused(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(RequestRejected):
        refuse_smuggling_shapes(CIMultiDictProxy(CIMultiDict(pairs)))
