"""The client's address, for IP allowlists and the audit log: the peer's address, or, when
the peer is a trusted proxy (`INGRESS__TRUSTED_PROXIES`, CIDRs), the last address in
X-Forwarded-For that is not itself a trusted proxy. A client can write any
X-Forwarded-For it likes, so it is read only from proxies the operator named."""
from __future__ import annotations

import ipaddress

from fastapi import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: list[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(request: Request, proxies: tuple[Network, ...]) -> str | None:
    peer = request.client.host if request.client else None
    if peer is None or not proxies or not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for header in request.headers.getlist("x-forwarded-for") for hop in header.split(",")]
    address = peer
    for hop in reversed([hop for hop in hops if hop]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a forged or broken entry: stop at the last address we could vouch for
        address = hop
        if not _trusted(hop, proxies):
            return hop
    return address
