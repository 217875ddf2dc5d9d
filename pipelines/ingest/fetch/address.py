"""SSRF guard: which IP addresses a fetch may connect to, and host names to vetted addresses.

Python's `ipaddress` misses CGNAT (100.64/10), deprecated site-local fec0::/10, the 192.0.0/24 fix of
CVE-2024-4032 on 3.11.7, and addresses that embed an IPv4 one (IPv4-mapped, 6to4, NAT64, IPv4-compatible), so
the networks are listed here and wrapped IPv4 addresses are judged by the address they carry
(docs/reference.md section 9).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any, Callable, Iterable

from pipelines.ingest.fetch.reasons import BLOCKED_PRIVATE_ADDRESS, CONNECTION_ERROR, FetchRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# socket.getaddrinfo's shape: (host, port, family, type) -> [(family, type, proto, canonname, sockaddr), ...]
Resolver = Callable[..., list[tuple[Any, ...]]]

_V4_BLOCKED = [(ipaddress.IPv4Network(net), label) for net, label in (
    ("0.0.0.0/8", "'this network'"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared CGNAT space"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)]
_V6_BLOCKED = [(ipaddress.IPv6Network(net), label) for net, label in (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments (incl. Teredo)"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "SRv6 SIDs"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)]
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# One inet_aton part: hex with 0x, octal with a leading 0, or decimal.
_INET_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def parse_inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address glibc's inet_aton reads in `text` (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`),
    or None. Unlike inet_aton, trailing garbage after a space is refused."""
    parts = text.split(".")
    if len(parts) > 4 or not all(_INET_ATON_PART.fullmatch(p) for p in parts):
        return None
    values = [int(p, 16) if p[:2].lower() == "0x" else int(p, 8) if p.startswith("0") else int(p) for p in parts]
    *head, last = values
    tail_bits = 8 * (4 - len(head))
    if any(v > 255 for v in head) or last >= 1 << tail_bits:
        return None
    value = 0
    for v in head:
        value = value << 8 | v
    return ipaddress.IPv4Address(value << tail_bits | last)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host names literally (IPv6, or any IPv4 form inet_aton accepts), else None."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise FetchRefused(CONNECTION_ERROR, f"invalid IPv6 literal {host!r}") from None
    return parse_inet_aton(host)


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 one carries and how, for the forms that deliver to that IPv4 address."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V4_COMPATIBLE:
        return "IPv4-compatible", ipaddress.IPv4Address(int(ip))
    return None


def _v4_refusal(ip: ipaddress.IPv4Address) -> str | None:
    """Why `ip` is refused, as "is <range> (<network>)", or None."""
    for net, label in _V4_BLOCKED:
        if ip in net:
            return f"is {label} ({net})"
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return "is not globally routable"
    return None


class AddressPolicy:
    """Decides whether the fetch may connect to an address; picklable, no state besides its settings."""

    def __init__(self, allow_private_network: bool = False, allowed_networks: Iterable[str] = ()) -> None:
        self.allow_private_network = allow_private_network
        self.allowed_networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)

    def _exempt(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed_networks)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why `ip` is refused (one phrase naming the range), or None when it may be used."""
        if self.allow_private_network or self._exempt(ip):
            return None
        if isinstance(ip, ipaddress.IPv4Address):
            why = _v4_refusal(ip)
            return None if why is None else f"{ip} {why}"
        for net, label in _V6_BLOCKED:
            if ip in net:
                return f"{ip} is {label} ({net})"
        wrapped = _embedded_v4(ip)
        if wrapped is not None:
            how, inner = wrapped
            if self._exempt(inner):
                return None
            why = _v4_refusal(inner)
            return None if why is None else f"{ip} ({how} {inner}) {why}"
        if ip not in _GLOBAL_UNICAST_V6 or not ip.is_global or ip.is_multicast or ip.is_reserved:
            return f"{ip} is not globally routable"
        return None

    def check(self, host: str, ip: IPAddress) -> None:
        """Raise `blocked_private_address` when `ip` (for `host`) is refused."""
        why = self.refusal(ip)
        if why is not None:
            named = "" if host == str(ip) else f"{host} -> "
            raise FetchRefused(BLOCKED_PRIVATE_ADDRESS, named + why)


def resolve_vetted(host: str, port: int, resolver: Resolver, policy: AddressPolicy) -> list[IPAddress]:
    """Every address `host` resolves to, all vetted by `policy`: one refused address refuses the host, so a
    DNS answer mixing public and private addresses cannot steer the connection to the private one."""
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = resolver(host, port, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as err:
            raise FetchRefused(CONNECTION_ERROR, f"cannot resolve {host}: {err}") from None
        addresses = []
        for family, _type, _proto, _name, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
                if ip not in addresses:
                    addresses.append(ip)
        if not addresses:
            raise FetchRefused(CONNECTION_ERROR, f"cannot resolve {host}: no IP address")
    for ip in addresses:
        policy.check(host, ip)
    return addresses
