"""SSRF guards of the fetch layer: schemes, numeric host forms, resolved and redirected private addresses,
pinned connections (Host/SNI), against real servers on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import subprocess

import pytest
from pydantic import ValidationError

from fetch_server import body, jpeg, redirect, serve
from pipelines.ingest.fetch import ALLOW_PRIVATE_ENV, AddressPolicy, FetchConfig, Fetcher, parse_inet_aton, reason_of

IMG = jpeg()
# Loopback written every way glibc's inet_aton reads it (docs/reference.md section 9).
LOOPBACK_FORMS = ["127.0.0.1", "2130706433", "0x7f000001", "017700000001", "0177.0.0.1", "127.1", "127.0.1",
                  "0x7f.1", "127.000.000.001", "0X7F.0x0.0x0.0x1"]
PRIVATE_HOSTS = LOOPBACK_FORMS + [
    "0", "0.0.0.0", "[::1]", "[::]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::1]",
    "[::127.0.0.1]", "[fe80::1]", "[fec0::1]", "[fc00::1]", "[ff02::1]", "[64:ff9b:1::1]", "[2001:db8::1]",
    "169.254.169.254", "100.64.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "192.0.0.8", "198.18.0.1",
    "224.0.0.1", "240.0.0.1", "255.255.255.255", "[::ffff:169.254.169.254]", "[64:ff9b::a00:1]",
]


def no_dns(*args, **kwargs):
    raise AssertionError(f"resolver called for a literal address: {args}")


def resolver_to(table: dict[str, list[str]], calls: list[str] | None = None):
    """A getaddrinfo-shaped resolver hook answering from `table`."""

    def resolve(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
                for ip in table[host]]

    return resolve


def local_only(**kw) -> FetchConfig:
    """Private addresses blocked except 127.0.0.1 itself, where the test servers live."""
    return FetchConfig(allowed_networks=("127.0.0.1/32",), respect_robots=False, timeout=5, per_host_rate=1000, **kw)


def test_inet_aton_forms_match_glibc():
    forms = LOOPBACK_FORMS + ["00", "0xffffffff", "1.16777215", "1.2.65535", "0377.0377.0377.0377",
                              "00000000000000127.1", "4294967295", "8.8.8.8"]
    bad = ["127.0.0.1.", "0x", "0x.1", "0x100000000", "1.0x1000000", "1.16777216", "1.2.65536", "1.2.3.4.5",
           "", ".1", "1..2", "09", "08.0.0.1", "0400.1.1.1", "256.1.1.1", "4294967296", "+1", "-1", "1e2",
           " 1.2.3.4", "1.2.3.4 x", "example.com"]
    for text in forms:
        assert str(parse_inet_aton(text)) == socket.inet_ntoa(socket.inet_aton(text)), text
    for text in bad:
        assert parse_inet_aton(text) is None, text


def test_policy_refuses_private_and_allows_public():
    policy = AddressPolicy()
    for host in PRIVATE_HOSTS:
        literal = host.strip("[]")
        ip = ipaddress.ip_address(literal) if ":" in literal else parse_inet_aton(literal)
        assert policy.refusal(ip) is not None, host
    for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]:
        assert policy.refusal(ipaddress.ip_address(public)) is None, public
    assert AddressPolicy(allowed_networks=["10.0.0.0/8"]).refusal(ipaddress.ip_address("10.1.2.3")) is None
    assert AddressPolicy(allow_private_network=True).refusal(ipaddress.ip_address("127.0.0.1")) is None


def test_every_private_host_form_is_refused_before_connecting():
    with serve({"/a.jpg": body(IMG)}) as srv:
        fetcher = Fetcher(FetchConfig(respect_robots=False, timeout=3), resolver=no_dns)
        for host in PRIVATE_HOSTS:
            key, data, error = fetcher.fetch((7, f"http://{host}:{srv.port}/a.jpg"))
            assert (key, data) == (7, None) and reason_of(error) == "blocked_private_address", (host, error)
        assert srv.requests == []


def test_loopback_forms_reach_the_server_when_private_network_is_allowed():
    with serve({"/a.jpg": body(IMG)}) as srv:
        fetcher = Fetcher(FetchConfig(allow_private_network=True, respect_robots=False), resolver=no_dns)
        for host in LOOPBACK_FORMS:
            key, data, error = fetcher.fetch((1, f"http://{host}:{srv.port}/a.jpg"))
            assert error is None and data.read() == IMG, host
        assert len(srv.requests) == len(LOOPBACK_FORMS)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/a.jpg", "file:///etc/passwd", "data:image/png;base64,AAAA",
                                 "gopher://127.0.0.1:70/", "javascript:alert(1)", "//127.0.0.1/a.jpg", "", None])
def test_non_http_urls_are_refused(url):
    _, data, error = Fetcher(FetchConfig(allow_private_network=True)).fetch((0, url))
    assert data is None and error.startswith("blocked_scheme: ")


def test_env_switches_private_network_on(monkeypatch):
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    assert FetchConfig().allow_private_network is False
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    assert FetchConfig().allow_private_network is True
    assert FetchConfig(allow_private_network=False).allow_private_network is True
    with pytest.raises(ValidationError):
        FetchConfig(max_redirect=3)  # typo: extra fields are refused
    with pytest.raises(ValidationError):
        FetchConfig(allowed_networks=("10.0.0.300/8",))


def test_public_name_resolving_to_private_address_is_refused():
    with serve({"/a.jpg": body(IMG)}) as srv:
        for answer in (["127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["::ffff:10.0.0.1"]):
            fetcher = Fetcher(FetchConfig(respect_robots=False), resolver=resolver_to({"cdn.example.test": answer}))
            _, data, error = fetcher.fetch((0, f"http://cdn.example.test:{srv.port}/a.jpg"))
            assert data is None and error.startswith("blocked_private_address: cdn.example.test -> "), error
        assert srv.requests == []


def test_connection_is_pinned_to_the_vetted_address_and_carries_the_name():
    calls: list[str] = []
    resolve = resolver_to({"cdn.example.test": ["127.0.0.1"]}, calls)
    with serve({"/a.jpg?v=1": body(IMG)}) as srv:
        fetcher = Fetcher(local_only(), resolver=resolve)
        _, data, error = fetcher.fetch((0, f"http://cdn.example.test:{srv.port}/a.jpg?v=1#frag"))
        assert error is None and data.read() == IMG
        assert calls == ["cdn.example.test"]  # one DNS answer, used for the connection: no rebinding window
        path, headers = srv.requests[0]
        assert headers["Host"] == f"cdn.example.test:{srv.port}" and "tessera" in headers["User-Agent"]


def test_redirects_are_guarded_on_every_hop():
    resolve = resolver_to({"internal.example.test": ["10.0.0.5"]})
    routes = {
        "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-internal": redirect("http://internal.example.test/a.jpg"),
        "/to-mapped": redirect("http://[::ffff:127.0.0.2]/a.jpg"),
        "/to-ftp": redirect("ftp://127.0.0.1/a.jpg"),
        "/to-file": redirect("file:///etc/passwd"),
        "/relative": redirect("/a.jpg"),
        "/a.jpg": body(IMG),
    }
    for n in range(1, 7):
        routes[f"/hop/{n}"] = redirect(f"/hop/{n - 1}")
    routes["/hop/0"] = body(IMG)
    with serve(routes) as srv:
        fetcher = Fetcher(local_only(), resolver=resolve)
        expect = {"/to-metadata": "blocked_private_address", "/to-internal": "blocked_private_address",
                  "/to-mapped": "blocked_private_address", "/to-ftp": "blocked_scheme", "/to-file": "blocked_scheme"}
        for path, reason in expect.items():
            _, data, error = fetcher.fetch((0, srv.url + path))
            assert data is None and reason_of(error) == reason, (path, error)
        assert fetcher.fetch((0, srv.url + "/relative"))[1].read() == IMG
        assert fetcher.fetch((0, srv.url + "/hop/5"))[1].read() == IMG  # exactly 5 redirects: fine
        srv.requests.clear()
        _, data, error = fetcher.fetch((0, srv.url + "/hop/6"))
        assert data is None and error.startswith("too_many_redirects: ")
        assert srv.paths() == [f"/hop/{n}" for n in range(6, 0, -1)]  # the 6th redirect is not followed


def _make_cert(tmp_path, name: str) -> tuple[str, str, str]:
    """A throwaway CA and a leaf certificate for `name` made with the openssl CLI: (ca, cert, key) paths."""
    ext = tmp_path / "ext.cnf"
    ext.write_text(f"subjectAltName=DNS:{name}\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=tessera test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", f"/CN={name}")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", str(ext))
    return str(tmp_path / "ca.pem"), str(tmp_path / "leaf.pem"), str(tmp_path / "leaf.key")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI to make a test certificate")
def test_https_sends_sni_and_verifies_the_name_not_the_address(tmp_path):
    ca, cert, key = _make_cert(tmp_path, "images.example.test")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=ca)
    names = {"images.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]}
    with serve({"/a.jpg": body(IMG)}, tls=server_tls) as srv:
        fetcher = Fetcher(local_only(), resolver=resolver_to(names), tls_context=client_tls)
        _, data, error = fetcher.fetch((0, f"https://images.example.test:{srv.port}/a.jpg"))
        assert error is None and data.read() == IMG
        assert srv.sni == ["images.example.test"]
        assert srv.requests[0][1]["Host"] == f"images.example.test:{srv.port}"
        _, data, error = fetcher.fetch((0, f"https://other.example.test:{srv.port}/a.jpg"))
        assert data is None and error.startswith("connection_error: ") and "certificate" in error.lower(), error
