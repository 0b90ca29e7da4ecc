"""The lab itself: hosts reach each other through the bridge and the NAT, filtering and shaping apply,
nothing routes outside the lab, and teardown leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netlab import (
    PHONE_ADDRESS,
    ROUTER_WAN,
    SERVER_ADDRESS,
    Host,
    Netlab,
    PhoneNetwork,
    phone_network,
    sh,
)

pytestmark = [pytest.mark.network, pytest.mark.slow]

# A one-shot server inside a host: reports the peer address of one TCP connection or UDP datagram.
ECHO_PEER = """
import socket, sys, json
kind, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
if kind == "tcp":
    s.listen(1); c, peer = s.accept(); c.sendall(b"ok"); c.close()
else:
    data, peer = s.recvfrom(100); s.sendto(b"ok", peer)
print(json.dumps(peer[0]), flush=True)
"""

SEND = """
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
s.settimeout(2)
try:
    if kind == "tcp":
        s.connect((host, port)); print(s.recv(10).decode())
    else:
        s.sendto(b"hi", (host, port)); print(s.recvfrom(10)[0].decode())
except OSError as exc:
    print("failed", type(exc).__name__)
"""


def exchange(net: PhoneNetwork, kind: str, port: int) -> tuple[str, str]:
    """The phone sends to the server; returns (what the phone got back, the source the server saw)."""
    server = net.server.popen([sys.executable, "-c", ECHO_PEER, kind, str(port)], stdout=-1)
    deadline = time.monotonic() + 5
    probe = "-ltnH" if kind == "tcp" else "-lunH"
    while f":{port}" not in net.server.run(["ss", probe]).stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    got = net.phone.run([sys.executable, "-c", SEND, kind, SERVER_ADDRESS, str(port)]).stdout.strip()
    seen = ""
    if got == "ok":
        assert server.stdout is not None
        seen = json.loads(server.stdout.readline())
    server.kill()
    return got, seen


def test_the_phone_reaches_the_server_through_the_nat(net: PhoneNetwork) -> None:
    got, seen = exchange(net, "tcp", 8443)
    assert got == "ok" and seen == ROUTER_WAN  # masqueraded: the server never sees the phone's address
    got, seen = exchange(net, "udp", 40000)
    assert got == "ok" and seen == ROUTER_WAN


def test_a_router_that_blocks_udp_and_most_tcp(lab: Netlab) -> None:
    net = phone_network(lab, allow_udp=False, allow_tcp_ports=[443, 8443])
    assert exchange(net, "udp", 40000)[0].startswith("failed")
    assert exchange(net, "tcp", 3478)[0].startswith("failed")
    assert exchange(net, "tcp", 443) == ("ok", ROUTER_WAN)


def test_no_host_has_a_route_out_of_the_lab(net: PhoneNetwork) -> None:
    for host in (net.server, net.turn, net.router, net.phone):
        routes = host.run(["ip", "-4", "route", "show", "table", "all"]).stdout
        for line in routes.splitlines():
            if line.startswith(("local ", "broadcast ")):
                continue
            destination = line.split()[0]
            assert destination.startswith(("198.18.", "198.19.", "default via 198.19.")) or (
                destination == "default" and "via 198.19." in line
            ), (host.role, line)
        for line in host.run(["ip", "-o", "-d", "link"]).stdout.splitlines():
            assert "loopback" in line or " veth " in line, (host.role, line)  # no other way out


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40001))
while True:
    data, peer = s.recvfrom(100); s.sendto(data, peer)
"""

UDP_RTT = """
import socket, statistics, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
times = []
for n in range(5):
    start = time.monotonic(); s.sendto(b"x", (sys.argv[1], 40001)); s.recvfrom(10)
    times.append((time.monotonic() - start) * 1000)
print(statistics.median(times))
"""

UDP_BURST = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for n in range(200):  # fewer than fill the receive buffer (256 small datagrams)
    s.sendto(b"x", (sys.argv[1], 40001)); time.sleep(0.001)
s.settimeout(0.5)
got = 0
try:
    while True:
        s.recvfrom(10); got += 1
except TimeoutError:
    pass
print(got)
"""

TCP_SINK = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 40002)); s.listen(4)
while True:
    c, _ = s.accept()
    while c.recv(65536): pass
    c.sendall(b"done"); c.close()
"""

TCP_SEND = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], 40002))
start = time.monotonic()
s.sendall(bytes(int(sys.argv[2]))); s.shutdown(socket.SHUT_WR); s.recv(10)
print(time.monotonic() - start)
"""


def listening(host: Host, option: str, port: int) -> None:
    """Wait until something listens on ``port`` in ``host``."""
    deadline = time.monotonic() + 5
    while f":{port} " not in host.run(["ss", option]).stdout + " " and time.monotonic() < deadline:
        time.sleep(0.05)


def test_loss_and_rate_shaping(net: PhoneNetwork) -> None:
    net.server.popen([sys.executable, "-c", UDP_ECHO])
    net.server.popen([sys.executable, "-c", TCP_SINK])
    listening(net.server, "-lunH", 40001)
    listening(net.server, "-ltnH", 40002)

    def echoed() -> int:
        return int(net.phone.run([sys.executable, "-c", UDP_BURST, SERVER_ADDRESS]).stdout)

    def upload_s(size: int) -> float:
        return float(net.phone.run([sys.executable, "-c", TCP_SEND, SERVER_ADDRESS, str(size)]).stdout)

    assert echoed() == 200
    net.router.shape("lan", loss_pct=25)  # the downlink to the phone
    lossy = echoed()
    net.router.unshape("lan")
    assert 115 <= lossy <= 185, lossy  # 150 expected
    fast = upload_s(60_000)
    net.router.shape("wan", rate_kbit=300)  # the phone's uplink beyond the router
    slow = upload_s(60_000)  # 480 kbit at 300 kbit/s: about 1.6 s less the bucket
    net.router.unshape("wan")
    assert fast < 0.3 and 1.0 < slow < 3.0, (fast, slow)


def test_teardown_removes_every_namespace(netns_ok: None) -> None:
    lab = Netlab()
    built = phone_network(lab)
    sleeper = built.phone.popen(["sleep", "600"])
    names = [h.netns for h in lab.hosts.values()]
    lab.close()
    assert sleeper.poll() is not None
    listing = sh(["ip", "netns", "list"]).stdout
    assert not [n for n in names if n in listing]
    assert PHONE_ADDRESS  # the address plan stays importable for the other tests


def test_the_wire_delays_loses_and_limits_like_netem(lab: Netlab) -> None:
    net = phone_network(lab, shaped=True)
    assert net.link is not None
    net.server.popen([sys.executable, "-c", UDP_ECHO])
    net.server.popen([sys.executable, "-c", TCP_SINK])
    listening(net.server, "-lunH", 40001)
    listening(net.server, "-ltnH", 40002)

    def rtt_ms() -> float:
        return float(net.phone.run([sys.executable, "-c", UDP_RTT, SERVER_ADDRESS]).stdout)

    def echoed() -> int:
        return int(net.phone.run([sys.executable, "-c", UDP_BURST, SERVER_ADDRESS]).stdout)

    def upload_s(size: int) -> float:
        return float(net.phone.run([sys.executable, "-c", TCP_SEND, SERVER_ADDRESS, str(size)]).stdout)

    plain = rtt_ms()
    fast = upload_s(60_000)
    assert echoed() == 200
    net.link.shape(a_to_b={"delay_ms": 75}, b_to_a={"delay_ms": 75})
    delayed = rtt_ms()
    net.link.shape(a_to_b={"loss_pct": 25})
    lossy = echoed()
    net.link.shape(b_to_a={"rate_kbit": 300, "queue_ms": 2000})
    slow = upload_s(60_000)
    net.link.unshape()
    after = rtt_ms()
    figures = (plain, delayed, lossy, fast, slow, after)
    assert plain < 20 and 150 <= delayed < 200 and after < 20, figures
    assert 115 <= lossy <= 185, figures
    assert fast < 0.5 and 1.2 < slow < 3.0, figures
    print(
        f"\nwire: rtt {plain:.1f} -> {delayed:.1f} ms; 25 % loss: {lossy}/200 echoed; "
        f"60 kB up {fast:.2f} s -> {slow:.2f} s"
    )


def test_a_lab_left_by_a_killed_run_is_removed_by_the_next(netns_ok: None) -> None:
    here = str(Path(__file__).resolve().parent)
    script = (
        f"import sys, time; sys.path.insert(0, {here!r})\n"
        "from netlab import Netlab, phone_network\n"
        "lab = Netlab(); phone_network(lab); print(lab.tag, flush=True); time.sleep(600)\n"
    )
    orphan = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert orphan.stdout is not None
    tag = orphan.stdout.readline().strip()
    assert tag and tag in sh(["ip", "netns", "list"]).stdout
    orphan.kill()  # no teardown: its namespaces stay behind
    orphan.wait()
    assert tag in sh(["ip", "netns", "list"]).stdout
    Netlab().close()  # the next lab clears what a dead one left
    assert tag not in sh(["ip", "netns", "list"]).stdout
