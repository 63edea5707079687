"""Host names to IP addresses, the way the upstream connection will read them: every numeric spelling
(`2130706433`, `0x7f000001`, `127.1`, `0177.0.0.1`, IPv6 forms, IPv4-mapped IPv6) and hosts-file or DNS
names, resolved off the event loop and cached for a short time; plus "is this address one of this machine's"."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

TTL_SECONDS = 30.0
NEGATIVE_TTL_SECONDS = 5.0
_CACHE_LIMIT = 4096
# What inet_aton reads as an IPv4 address: one to four parts, decimal, octal (0…) or hex (0x…).
_INET_ATON = re.compile(r"[0-9a-fx.]+")


# Pure functions of a host string, memoised: the proxy asks them on every request for the same few hosts.
@functools.lru_cache(maxsize=4096)
def host_key(host: str) -> str:
    """The host as names compare: brackets and an IPv6 zone id dropped, lower case, no trailing dot."""
    name = host.strip().strip("[]").lower()
    name = name.split("%", 1)[0] if ":" in name else name
    return name[:-1] if name.endswith(".") and not name.endswith("..") else name


@functools.lru_cache(maxsize=4096)
def numeric_address(host: str) -> Address | None:
    """The address a numeric host spelling means to the C resolver (inet_aton + inet_pton), else None.

    `127.1`, `2130706433`, `0x7f000001` and `0177.0.0.1` are all 127.0.0.1; `::ffff:127.0.0.1` is too.
    """
    name = host_key(host)
    if not name:
        return None
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        if not _INET_ATON.fullmatch(name) or ".." in name or name.endswith("."):
            return None
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@functools.lru_cache(maxsize=4096)
def canonical_host(host: str) -> str:
    """A numeric spelling as its one canonical address text; a name in lower case."""
    addr = numeric_address(host)
    return str(addr) if addr is not None else host_key(host)


def getaddrinfo_addresses(host: str) -> tuple[Address, ...]:
    """Blocking resolution through the system resolver (hosts file, then DNS); () when it fails."""
    try:
        infos = socket.getaddrinfo(host_key(host), None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    out: list[Address] = []
    for info in infos:
        addr = numeric_address(str(info[4][0]))
        if addr is not None and addr not in out:
            out.append(addr)
    return tuple(out)


class Resolver:
    """Cached resolution: numeric spellings are parsed, names resolved once per TTL (misses for less)."""

    def __init__(
        self,
        resolve: Callable[[str], tuple[Address, ...]] = getaddrinfo_addresses,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolve = resolve
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[Address, ...]]] = {}

    def cached(self, host: str) -> tuple[Address, ...] | None:
        """The addresses without waiting: numeric spellings, fresh cache entries; None when unknown yet."""
        hit = self._cache.get(host)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        addr = numeric_address(host)
        if addr is not None:
            self._remember(host, (addr,), float("inf"))
            return (addr,)
        return None

    def now(self, host: str) -> tuple[Address, ...]:
        """Resolve, blocking (config load)."""
        hit = self.cached(host)
        if hit is not None:
            return hit
        found = self._resolve(host)
        self._remember(host, found, TTL_SECONDS if found else NEGATIVE_TTL_SECONDS)
        return found

    async def resolve(self, host: str) -> tuple[Address, ...]:
        """Resolve on a worker thread: a slow DNS answer holds only this request, not the proxy."""
        hit = self.cached(host)
        if hit is not None:
            return hit
        found = await asyncio.to_thread(self._resolve, host)
        self._remember(host, found, TTL_SECONDS if found else NEGATIVE_TTL_SECONDS)
        return found

    def _remember(self, host: str, found: tuple[Address, ...], ttl: float) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[host] = (self._clock() + ttl, found)


class LocalAddresses:
    """Whether an address belongs to this machine: loopback, unspecified, or bindable (asked once each)."""

    def __init__(self) -> None:
        self._known: dict[Address, bool] = {}

    def __contains__(self, addr: Address) -> bool:
        hit = self._known.get(addr)
        if hit is None:
            if len(self._known) >= _CACHE_LIMIT:  # the agent picks the addresses: keep the memory bounded
                self._known.clear()
            hit = self._known[addr] = addr.is_loopback or addr.is_unspecified or _bindable(addr)
        return hit


def _bindable(addr: Address) -> bool:
    # Only an address of one of this machine's interfaces can be bound: the kernel knows them all.
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(addr), 0))
    except OSError:
        return False
    return True


class Listener:
    """A listening service (the control plane, the proxy itself) recognised by address and port."""

    def __init__(self, addresses: Iterable[Address], port: int, local: LocalAddresses) -> None:
        self.addresses = frozenset(addresses)
        self.port = port
        self._local = local
        # Listening on 0.0.0.0 / :: accepts on every local address; on a loopback one, any loopback reaches it.
        self._any_local = any(a.is_unspecified for a in self.addresses)
        self._any_loopback = any(a.is_loopback for a in self.addresses)

    def reached_by(self, addresses: Iterable[Address], port: int) -> bool:
        if port != self.port:
            return False
        for addr in addresses:
            if addr in self.addresses or (self._any_loopback and addr.is_loopback):
                return True
            if addr.is_unspecified:
                return True  # connecting to 0.0.0.0 or :: reaches this machine, where the listener is
            if self._any_local and addr in self._local:
                return True
        return False
