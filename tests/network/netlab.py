"""A simulated network of the project's own test hosts: network namespaces, veth pairs, a bridge, NAT.

Every host is a named network namespace (``ip netns``) whose name carries this lab's unique tag, so
that parallel runs never collide. The "internet" is a bridge inside a namespace of its own; hosts are
wired to it (or to each other) with veth pairs. Nothing is linked to the namespace the lab is built
from, and no namespace has a route anywhere but the lab's own subnets: traffic stays among the hosts
the test made. Addresses come from 198.18.0.0/15 (RFC 2544's benchmarking range, never routed).

A lab holds an ``flock`` on a lock file while it lives; a later lab deletes the namespaces of labs
whose lock is free (their process died before tearing down).

Typical use::

    with Netlab() as lab:
        net = lab.bridge("internet")
        server = lab.host("server")
        lab.attach(server, net, "198.18.0.10/24")
        server.popen(["python", "-m", "http.server"])
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

PREFIX = "hslab"  # every namespace of every lab starts with this
LOCK_DIR = Path("/run/hearing-netlab")
IP = "ip"


class NetlabError(RuntimeError):
    """A command building or changing the lab failed; the message has its output."""


def sh(args: Sequence[str], *, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command (in the caller's namespace) and return its output; raise NetlabError on failure."""
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        output = result.stderr or result.stdout
        raise NetlabError(f"{shlex.join(args)} failed ({result.returncode}): {output}")
    return result


def netns_supported() -> str | None:
    """None when this process may build labs; otherwise why not (for ``pytest.skip``)."""
    if os.geteuid() != 0:
        return "network labs need root (run through scripts/run-tests.sh as root)"
    for tool in ("ip", "tc", "nft"):
        if sh(["sh", "-c", f"command -v {tool}"], check=False).returncode != 0:
            return f"{tool} is not installed (scripts/system-deps.sh test installs it)"
    probe = f"{PREFIX}probe{os.getpid()}"
    made = sh([IP, "netns", "add", probe], check=False)
    if made.returncode != 0:
        return f"ip netns add is not permitted here: {made.stderr.strip()}"
    sh([IP, "netns", "del", probe], check=False)
    return None


@dataclass
class Host:
    """One test host: a network namespace and the processes the test runs in it."""

    lab: Netlab
    role: str
    netns: str
    addresses: dict[str, str] = field(default_factory=dict)  # interface -> address/prefix

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` prefixed so that they run inside this host."""
        return [IP, "netns", "exec", self.netns, *args]

    def run(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command inside this host and return its output."""
        return sh(self.command(args), check=check, timeout=timeout)

    def popen(
        self,
        args: Sequence[str],
        *,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process inside this host; the lab stops it at teardown."""
        process = subprocess.Popen(  # noqa: S603
            self.command(args), stdout=stdout, stderr=stderr, env=env, cwd=cwd, start_new_session=True
        )
        self.lab.processes.append(process)
        return process

    def address(self, interface: str = "eth0") -> str:
        """This host's address (without prefix length) on ``interface``."""
        return self.addresses[interface].split("/")[0]

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``ip -n <netns> args...``."""
        return sh([IP, "-n", self.netns, *args], check=check)

    def sysctl(self, name: str, value: str) -> None:
        """Set a per-namespace sysctl (net.*) inside this host."""
        self.run(["sysctl", "-q", "-w", f"{name}={value}"])

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (``nft -f -`` text) inside this host."""
        result = subprocess.run(  # noqa: S603
            self.command(["nft", "-f", "-"]), input=ruleset, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise NetlabError(f"nft in {self.role} failed: {result.stderr}\n{ruleset}")

    def block(self, address: str) -> None:
        """Drop everything this host forwards to or from ``address`` (a router's firewall)."""
        self.nft(
            f"""
table ip lab_block {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    ip daddr {address} drop
    ip saddr {address} drop
  }}
}}
"""
        )

    def unblock(self) -> None:
        """Lift :meth:`block`."""
        self.run(["nft", "delete", "table", "ip", "lab_block"], check=False)

    def shape(
        self,
        interface: str = "eth0",
        *,
        loss_pct: float = 0,
        rate_kbit: int | None = None,
        burst_kb: int = 16,
        delay_ms: float = 0,
    ) -> None:
        """Make what this host sends on ``interface`` worse: random loss (nftables ``numgen random``),
        a rate limit (``tc tbf``), and delay (``tc netem``, only where the kernel has it: this
        machine's does not, see :func:`netem_available`). Shape a router's interfaces: dropping what a
        host itself sends makes its ``send`` fail with EPERM instead of losing the packet silently."""
        self.unshape(interface)
        if delay_ms:
            if not netem_available():
                raise NetlabError("this kernel has no netem (CONFIG_NET_SCH_NETEM): no delay shaping")
            self.run(["tc", "qdisc", "replace", "dev", interface, "root", "netem", "delay", f"{delay_ms}ms"])
        elif rate_kbit:
            self.run(
                [
                    "tc", "qdisc", "replace", "dev", interface, "root", "tbf",
                    "rate", f"{rate_kbit}kbit", "burst", f"{burst_kb}kb", "latency", "300ms",
                ]
            )  # fmt: skip
        if loss_pct:
            per_mille = round(loss_pct * 10)
            self.nft(
                f"""
table ip lab_shape_{interface} {{
  chain postrouting {{
    type filter hook postrouting priority 100; policy accept;
    oifname "{interface}" numgen random mod 1000 < {per_mille} drop
  }}
}}
"""
            )

    def unshape(self, interface: str = "eth0") -> None:
        """Lift any shaping of ``interface``."""
        self.run(["tc", "qdisc", "del", "dev", interface, "root"], check=False)
        self.run(["nft", "delete", "table", "ip", f"lab_shape_{interface}"], check=False)


def netem_available() -> bool:
    """Whether the kernel has ``tc netem`` (delay); tbf and nftables loss work without it."""
    try:
        with gzip.open("/proc/config.gz", "rt") as config:
            text = config.read()
        return "CONFIG_NET_SCH_NETEM=y" in text or "CONFIG_NET_SCH_NETEM=m" in text
    except OSError:
        return True  # no config to read: let tc say


@dataclass
class Wire:
    """A shaped cable: its host, its process and its settings file."""

    host: Host
    process: subprocess.Popen[bytes]
    config: Path

    def shape(
        self, a_to_b: Mapping[str, float] | None = None, b_to_a: Mapping[str, float] | None = None
    ) -> None:
        """Set each direction's ``delay_ms``, ``jitter_ms``, ``loss_pct``, ``rate_kbit``, ``queue_ms``;
        ``None`` (or nothing) leaves that direction unshaped."""
        self.config.write_text(json.dumps({"a_to_b": dict(a_to_b or {}), "b_to_a": dict(b_to_a or {})}))
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.05)

    def unshape(self) -> None:
        """Lift all shaping."""
        self.shape()


@dataclass
class Bridge:
    """A switch: a Linux bridge inside the lab's own switch namespace."""

    name: str
    netns: str


class Netlab:
    """The hosts, links and processes of one test; :meth:`close` (or leaving ``with``) removes all."""

    def __init__(self, tag: str | None = None) -> None:
        self.tag = tag or f"{os.getpid()}x{secrets.token_hex(3)}"
        self.hosts: dict[str, Host] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        self._switch: str | None = None
        self._bridges: dict[str, Bridge] = {}
        self._ports = 0
        self._lock: IO[str] | None = None
        self._files: list[Path] = []
        self._closed = False
        remove_stale_labs()
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        self._lock = open(LOCK_DIR / f"{self.tag}.lock", "w")  # noqa: SIM115
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def __enter__(self) -> Netlab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _netns_name(self, role: str) -> str:
        return f"{PREFIX}-{self.tag}-{role}"

    def _new_netns(self, role: str) -> str:
        name = self._netns_name(role)
        sh([IP, "netns", "add", name])
        sh([IP, "-n", name, "link", "set", "lo", "up"])
        # IPv4 only: fewer ICE candidates, and no IPv6 link-local address on any link.
        for key in ("all", "default"):
            sh(
                [IP, "netns", "exec", name, "sysctl", "-q", "-w", f"net.ipv6.conf.{key}.disable_ipv6=1"],
                check=False,
            )
        return name

    def host(self, role: str) -> Host:
        """A new host named ``role`` (letters and digits; unique within the lab)."""
        if role in self.hosts or role == "switch":
            raise ValueError(f"host {role!r} exists")
        host = Host(self, role, self._new_netns(role))
        self.hosts[role] = host
        return host

    def bridge(self, name: str) -> Bridge:
        """A switch (Linux bridge) named ``name`` in the lab's switch namespace."""
        if self._switch is None:
            self._switch = self._new_netns("switch")
        bridge = Bridge(name, self._switch)
        sh([IP, "-n", self._switch, "link", "add", name, "type", "bridge"])
        sh([IP, "-n", self._switch, "link", "set", name, "up"])
        self._bridges[name] = bridge
        return bridge

    def attach(self, host: Host, bridge: Bridge, address: str, interface: str = "eth0") -> str:
        """Wire ``host`` to ``bridge`` with a veth pair; ``interface`` gets ``address`` (CIDR). Returns
        the name of the switch's end."""
        self._ports += 1
        port = f"p{self._ports}"
        host.ip("link", "add", interface, "type", "veth", "peer", "name", port, "netns", bridge.netns)
        sh([IP, "-n", bridge.netns, "link", "set", port, "master", bridge.name])
        sh([IP, "-n", bridge.netns, "link", "set", port, "up"])
        self._configure(host, interface, address)
        return port

    def link(self, a: Host, a_address: str, b: Host, b_address: str, a_if: str, b_if: str) -> None:
        """Wire two hosts directly with a veth pair (``a_if`` in ``a``, ``b_if`` in ``b``)."""
        a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.netns)
        self._configure(a, a_if, a_address)
        self._configure(b, b_if, b_address)

    def wire(
        self, a: Host, a_address: str, b: Host, b_address: str, a_if: str, b_if: str, role: str = "wire"
    ) -> Wire:
        """Connect two hosts through a shaped cable (:mod:`wire`, netem in user space) in a host of its own;
        shape it with :meth:`Wire.shape`. Checksums and segmentation are left off the devices at both ends
        (the cable forwards frames as they are)."""
        cable = self.host(role)
        a.ip("link", "add", a_if, "type", "veth", "peer", "name", "wa", "netns", cable.netns)
        b.ip("link", "add", b_if, "type", "veth", "peer", "name", "wb", "netns", cable.netns)
        for host, interface in ((a, a_if), (b, b_if), (cable, "wa"), (cable, "wb")):
            host.run(["ethtool", "-K", interface, "tx", "off", "tso", "off", "gso", "off", "gro", "off"])
        cable.ip("link", "set", "wa", "up")
        cable.ip("link", "set", "wb", "up")
        self._configure(a, a_if, a_address)
        self._configure(b, b_if, b_address)
        config = Path(f"/tmp/{PREFIX}-{self.tag}-{role}.json")  # noqa: S108
        config.write_text("{}")
        self._files.append(config)
        process = cable.popen(
            [sys.executable, str(Path(__file__).with_name("wire.py")), "wa", "wb", str(config)],
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"wire ready":
            raise NetlabError("the wire did not start")
        return Wire(cable, process, config)

    def detach(self, host: Host, interface: str) -> None:
        """Pull the cable: delete ``interface`` (and its veth peer) from ``host``."""
        host.ip("link", "del", interface)
        host.addresses.pop(interface, None)

    @staticmethod
    def _configure(host: Host, interface: str, address: str) -> None:
        host.ip("addr", "add", address, "dev", interface)
        host.ip("link", "set", interface, "up")
        host.addresses[interface] = address

    def nat_router(
        self,
        router: Host,
        *,
        wan: str = "wan",
        lan: str = "lan",
        allow_udp: bool = True,
        allow_tcp_ports: Sequence[int] | None = None,
    ) -> None:
        """Make ``router`` a NAT (masquerade) from ``lan`` to ``wan``, forwarding only what is allowed:
        no UDP at all unless ``allow_udp``; only the given TCP ports if ``allow_tcp_ports`` is set."""
        router.sysctl("net.ipv4.ip_forward", "1")
        tcp = (
            "accept"
            if allow_tcp_ports is None
            else f"tcp dport {{ {', '.join(str(p) for p in allow_tcp_ports)} }} accept"
        )
        udp = "meta l4proto udp accept" if allow_udp else ""
        router.nft(
            f"""
table ip lab_nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "{wan}" masquerade
  }}
}}
table ip lab_filter {{
  chain forward {{
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "{lan}" oifname "{wan}" meta l4proto tcp {tcp}
    iifname "{lan}" oifname "{wan}" {udp}
    iifname "{lan}" oifname "{wan}" icmp type echo-request accept
  }}
}}
"""
        )

    def default_route(self, host: Host, via: str) -> None:
        """Send everything ``host`` does not reach directly to ``via`` (a router of the lab)."""
        host.ip("route", "replace", "default", "via", via)

    # --- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every process the lab started or that runs in its hosts, then delete the namespaces."""
        if self._closed:
            return
        self._closed = True
        for process in self.processes:
            _stop(process)
        names = [h.netns for h in self.hosts.values()] + ([self._switch] if self._switch else [])
        for name in names:
            delete_netns(name)
        for path in self._files:
            with contextlib.suppress(OSError):
                path.unlink()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (LOCK_DIR / f"{self.tag}.lock").unlink()
            self._lock.close()
            self._lock = None


def _stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace)


def delete_netns(name: str) -> None:
    """Kill whatever still runs inside namespace ``name``, then delete it (its veths go with it)."""
    pids = sh([IP, "netns", "pids", name], check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        if not sh([IP, "netns", "pids", name], check=False).stdout.strip():
            break
        time.sleep(0.05)
    sh([IP, "netns", "del", name], check=False)


def _lab_namespaces() -> Iterator[tuple[str, str]]:
    listing = sh([IP, "netns", "list"], check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.strip() else ""
        parts = name.split("-")
        if len(parts) >= 3 and parts[0] == PREFIX:
            yield name, parts[1]


def remove_stale_labs() -> None:
    """Delete the namespaces of labs whose owner died without tearing them down (their lock is free)."""
    for name, tag in list(_lab_namespaces()):
        lock = LOCK_DIR / f"{tag}.lock"
        try:
            LOCK_DIR.mkdir(parents=True, exist_ok=True)
            with open(lock, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live lab
        except OSError:
            continue
        delete_netns(name)
        with contextlib.suppress(OSError):
            lock.unlink()


# --- the standard network of the issue #16 tests ------------------------------------------------

INTERNET = "198.18.0.0/24"
SERVER_ADDRESS = "198.18.0.10"
TURN_ADDRESS = "198.18.0.20"
ROUTER_WAN = "198.18.0.30"
ROUTER2_WAN = "198.18.0.31"
ROUTER_LAN = "198.19.1.1"
PHONE_ADDRESS = "198.19.1.2"
ROUTER2_LAN = "198.19.2.1"
PHONE_ADDRESS2 = "198.19.2.2"


@dataclass
class PhoneNetwork:
    """The server and the TURN relay on the "internet" bridge; a phone behind a NAT router."""

    lab: Netlab
    internet: Bridge
    server: Host
    turn: Host
    router: Host
    phone: Host
    router2: Host | None = None
    link: Wire | None = None  # the phone's shaped link, when built with shaped=True


def phone_network(
    lab: Netlab,
    *,
    allow_udp: bool = True,
    allow_tcp_ports: Sequence[int] | None = None,
    second_network: bool = False,
    shaped: bool = False,
) -> PhoneNetwork:
    """Build the standard lab: server 198.18.0.10 and TURN 198.18.0.20 on the internet bridge, the router's
    WAN at 198.18.0.30, the phone at 198.19.1.2 behind it (NAT; UDP and TCP ports as allowed). With
    ``second_network`` a second NAT router (WAN 198.18.0.31, LAN 198.19.2.0/24: the phone's "mobile data")
    waits for :func:`move_phone`. With ``shaped`` the phone hangs on its router through a :class:`Wire`
    (``net.link``: ``a_to_b`` is the downlink to the phone, ``b_to_a`` its uplink)."""
    internet = lab.bridge("internet")
    server, turn, router, phone = (lab.host(r) for r in ("server", "turn", "router", "phone"))
    lab.attach(server, internet, f"{SERVER_ADDRESS}/24")
    lab.attach(turn, internet, f"{TURN_ADDRESS}/24")
    lab.attach(router, internet, f"{ROUTER_WAN}/24", interface="wan")
    cable = None
    if shaped:  # the phone's radio link: a = the router's side, b = the phone's
        cable = lab.wire(router, f"{ROUTER_LAN}/24", phone, f"{PHONE_ADDRESS}/24", a_if="lan", b_if="eth0")
    else:
        lab.link(router, f"{ROUTER_LAN}/24", phone, f"{PHONE_ADDRESS}/24", a_if="lan", b_if="eth0")
    lab.default_route(phone, ROUTER_LAN)
    lab.nat_router(router, allow_udp=allow_udp, allow_tcp_ports=allow_tcp_ports)
    net = PhoneNetwork(lab, internet, server, turn, router, phone, link=cable)
    if second_network:
        net.router2 = lab.host("router2")
        lab.attach(net.router2, internet, f"{ROUTER2_WAN}/24", interface="wan")
        lab.nat_router(net.router2, allow_udp=allow_udp, allow_tcp_ports=allow_tcp_ports)
    return net


def move_phone(net: PhoneNetwork) -> None:
    """The phone leaves its first network for the second (Wi-Fi to mobile data): its link to the first
    router goes away, a link to the second comes up, and its address becomes 198.19.2.2 behind another
    NAT (public address 198.18.0.31)."""
    assert net.router2 is not None, "build the network with second_network=True"
    net.lab.detach(net.phone, "eth0")
    net.lab.link(net.router2, f"{ROUTER2_LAN}/24", net.phone, f"{PHONE_ADDRESS2}/24", a_if="lan", b_if="eth1")
    net.lab.default_route(net.phone, ROUTER2_LAN)
