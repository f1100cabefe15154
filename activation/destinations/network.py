"""Destinations reach public addresses only (no server-side request forgery).

Someone who may edit a destination chooses where the CDP connects: without a guard they could point it at the
database (``http://127.0.0.1:5432``), the cloud's metadata service (``http://169.254.169.254/``) or any internal
host. So every outbound connection of a destination (webhook, audience API, ESP API, SMTP, S3) is checked twice:

- **at save**: ``host_error`` resolves the host and refuses it when any of its addresses is loopback, private,
  link-local, multicast, reserved, unspecified or otherwise not public (IPv4 and IPv6; an IPv4-mapped IPv6 address
  counts as its IPv4 address). The error names the address and why.
- **at send**: DNS may have changed since (DNS rebinding), so the connection itself resolves the host once, checks
  every address, and connects to a checked address; the name stays the request's Host header and the TLS server
  name. ``create_connection`` does that for requests (``session``), urllib3 inside botocore (``guard_boto_client``)
  and smtplib (``SMTPBackend``). A refused address raises ``AddressRefused``: a delivery that fails for good, with
  its reason, and no retries. Redirects are not followed by the CDP's own calls; the sessions of ESP libraries that
  do follow them check each hop, because each hop opens its connection here.

``CDP_DESTINATION_ALLOWED_NETWORKS`` (CIDRs) allows deliberate internal targets, such as a private SMTP relay.
Requests of destinations ignore the HTTP(S)_PROXY environment: a proxy would resolve the host beyond the check.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
from functools import lru_cache

import requests
from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from activation.destinations.base import DestinationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(DestinationError):
    """A destination's host is (or now resolves to) an address that is not public and not allowed. It will not
    pass by itself, so it is never retried."""

    def __init__(self, host: str, address: str, reason: str):
        shown = host if host == address else f"{host} ({address})"
        super().__init__(f"refused to connect to {shown}: {reason}; destinations reach public addresses only "
                         f"(CDP_DESTINATION_ALLOWED_NETWORKS allows internal ones)", retryable=False)
        self.host, self.address, self.reason = host, address, reason


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def allowed_networks() -> tuple:
    """The networks of ``CDP_DESTINATION_ALLOWED_NETWORKS`` (read at each check, so a test can change them)."""
    return _networks(tuple(getattr(settings, "CDP_DESTINATION_ALLOWED_NETWORKS", ()) or ()))


def address_refusal(address: str | IPAddress) -> str | None:
    """Why a destination may not connect to ``address`` (None: it may): the kind of address it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 address reaches that one: ::ffff:127.0.0.1 (mapped), 2002:7f00:1::
        # (6to4), Teredo's client.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            candidates.append(embedded)
            if ip.ipv4_mapped:
                ip = embedded
    if any(candidate in network for candidate in candidates for network in allowed_networks()):
        return None
    for embedded in candidates[1:]:
        if embedded is not ip and (reason := address_refusal(embedded)):
            return reason
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def resolve(host: str, port: int | None) -> list[tuple]:
    """``getaddrinfo`` for a TCP connection to ``host``, every address checked. Raises AddressRefused when any
    address is refused (a name with one public and one internal address is refused as a whole), and
    ``socket.gaierror`` when the name does not resolve."""
    host = host.strip("[]")
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    for info in infos:
        address = info[4][0]
        if reason := address_refusal(address):
            raise AddressRefused(host, address, reason)
    return infos


def host_error(host: str, port: int | None = None) -> str | None:
    """The check at save: an error message for the field when ``host`` does not resolve or is not public."""
    try:
        resolve(host, port)
    except AddressRefused as refused:
        shown = refused.host if refused.host == refused.address else f"{refused.host} resolves to {refused.address}"
        return (f"{shown}, {refused.reason}: destinations may only reach public addresses "
                f"(CDP_DESTINATION_ALLOWED_NETWORKS allows internal ones).")
    except (socket.gaierror, UnicodeError, ValueError):
        return f"The host {host} could not be resolved; check the address."
    return None


def create_connection(address: tuple[str, int], timeout=None, source_address=None,
                      socket_options=None) -> socket.socket:
    """``socket.create_connection`` that resolves once, checks every address, and connects to a checked one."""
    host, port = address
    error: OSError | None = None
    for family, socktype, proto, _, sockaddr in resolve(host, port):
        sock = None
        try:
            sock = socket.socket(family, socktype, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is None or isinstance(timeout, int | float):  # not a library's "default" marker
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as failed:
            error = failed
            if sock is not None:
                sock.close()
    raise error or OSError(f"getaddrinfo returned no address for {host}")


# --- HTTP: requests, and urllib3 inside botocore -------------------------------------------------------------------


class _GuardedConnectionMixin:
    """urllib3's ``_new_conn`` with the checked ``create_connection``; the host name stays for Host and SNI."""

    def _new_conn(self) -> socket.socket:
        try:
            return create_connection((self._dns_host, self.port), self.timeout, source_address=self.source_address,
                                     socket_options=self.socket_options)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(self, f"Connection to {self.host} timed out. "
                                            f"(connect timeout={self.timeout})") from error
        except OSError as error:
            raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPConnectionPool,
                                                   "https": GuardedHTTPSConnectionPool}


def session_guard(session: requests.Session) -> requests.Session:
    """``session`` with every connection checked (each redirect hop too) and no proxy from the environment."""
    session.trust_env = False
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def session() -> requests.Session:
    return session_guard(requests.Session())


def guard_boto_client(client):
    """Make a botocore client's connections checked (its URLLib3Session keeps the pool classes per scheme)."""
    from botocore.awsrequest import AWSHTTPConnection, AWSHTTPSConnection

    http_session = client._endpoint.http_session
    if getattr(http_session, "_cdp_guarded", False):
        return client

    class GuardedAWSHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = type("GuardedAWSHTTPConnection", (_GuardedConnectionMixin, AWSHTTPConnection), {})

    class GuardedAWSHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = type("GuardedAWSHTTPSConnection", (_GuardedConnectionMixin, AWSHTTPSConnection), {})

    pools = {"http": GuardedAWSHTTPConnectionPool, "https": GuardedAWSHTTPSConnectionPool}
    http_session._pool_classes_by_scheme = pools
    http_session._manager.clear()
    http_session._manager.pool_classes_by_scheme = pools
    for manager in http_session._proxy_managers.values():
        manager.clear()
        manager.pool_classes_by_scheme = pools
    http_session._cdp_guarded = True
    return client


def boto_refusal(error: Exception) -> AddressRefused | None:
    """The refusal inside botocore's wrapper exception (HTTPClientError), if that is what it is."""
    inner = getattr(error, "kwargs", {}).get("error")
    return inner if isinstance(inner, AddressRefused) else None


# --- SMTP ----------------------------------------------------------------------------------------------------------


class GuardedSMTP(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        return create_connection((host, port), timeout, source_address=self.source_address)


class GuardedSMTPSSL(smtplib.SMTP_SSL, GuardedSMTP):  # SMTP_SSL wraps the socket GuardedSMTP opened
    pass


class SMTPBackend(EmailBackend):
    """Django's SMTP backend whose connections are checked (STARTTLS still verifies the host name)."""

    @property
    def connection_class(self):
        return GuardedSMTPSSL if self.use_ssl else GuardedSMTP
