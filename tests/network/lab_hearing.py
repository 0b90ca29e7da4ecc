"""A live hearing in the lab: the real server process and coturn on the "internet", the courtroom (an
aiortc peer with a red picture and a 440 Hz tone) in the server's host, and a party's phone (Chromium,
Pixel 7 emulation, a green picture and a 660 Hz tone) in the phone host behind its NAT."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
import time
from pathlib import Path
from typing import Any

from coturn import Coturn, start_coturn
from lab_server import LabServer, insecure_session, start_server
from netlab import SERVER_ADDRESS, Host, PhoneNetwork
from nsloop import HostLoop

_TESTS = Path(__file__).resolve().parent.parent
for _folder in ("browser", "signaling", "media", "recording", "integration"):
    if str(_TESTS / _folder) not in sys.path:
        sys.path.append(str(_TESTS / _folder))

from browser_harness import CHROMIUM, CHROMIUM_ARGS, FakeMedia, pixel7  # noqa: E402
from integration_harness import Browser, Clip, ServerApi, make_clip, sealed_record, until  # noqa: E402
from playwright.async_api import Browser as Chromium  # noqa: E402
from playwright.async_api import Page, Playwright, expect  # noqa: E402

SECRET = "the lab relay's shared secret"
PARTY = FakeMedia("green", (0, 200, 0), 660.0)
MEDIA_TIMEOUT_S = 40.0

SELECTED_PAIRS_JS = """
async () => {
  const call = window.hearingClient.call;
  const result = {};
  const pcs = {publish: call._publish && call._publish.pc, subscribe: call._subscribe && call._subscribe.pc};
  for (const [name, pc] of Object.entries(pcs)) {
    if (!pc) continue;
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
    });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    result[name] = {
      ice: pc.iceConnectionState,
      local: local && {type: local.candidateType, relayProtocol: local.relayProtocol || null,
                       address: local.address, url: local.url || null},
      remote: remote && {type: remote.candidateType, address: remote.address, port: remote.port},
      bytesSent: pair ? pair.bytesSent : 0, bytesReceived: pair ? pair.bytesReceived : 0,
    };
  }
  return result;
}
"""
CANDIDATES_JS = """
async () => {
  const call = window.hearingClient.call;
  const out = {};
  const pcs = {publish: call._publish && call._publish.pc, subscribe: call._subscribe && call._subscribe.pc};
  for (const [name, pc] of Object.entries(pcs)) {
    if (!pc) continue;
    const stats = await pc.getStats();
    const rows = [];
    stats.forEach((s) => {
      if (s.type === 'local-candidate' || s.type === 'remote-candidate')
        rows.push([s.type, s.candidateType, s.protocol, s.relayProtocol, s.address, s.port, s.url]);
      if (s.type === 'candidate-pair') rows.push(['pair', s.state, s.nominated, s.bytesSent]);
    });
    out[name] = {ice: pc.iceConnectionState, gathering: pc.iceGatheringState, rows};
  }
  return out;
}
"""
STATS_JS = "() => window.hearingClient.call.participantStats()"


def busy_clip(seconds: float = 2.0, bit_rate: int = 900_000) -> Clip:
    """A courtroom camera that needs its bitrate: noisy red frames (a real room's picture, not a solid
    colour that compresses to nothing), VP8 at about ``bit_rate``, a keyframe a second, 440 Hz tone."""
    import fractions

    import av
    import numpy as np
    from media_harness import COLOURS, FPS, HEIGHT, TONES, WIDTH, encode_opus

    rng = np.random.default_rng(16)
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = fractions.Fraction(FPS, 1)
    encoder.bit_rate = bit_rate
    encoder.gop_size = FPS
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "kf-min-dist": str(FPS)}
    video: list[bytes] = []
    keyframes: set[int] = set()
    for number in range(int(seconds * FPS)):
        rgb = np.clip(np.array(COLOURS[0]) + rng.integers(-60, 60, (HEIGHT, WIDTH, 3)), 0, 255).astype(
            np.uint8
        )
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = number
        frame.pict_type = (
            av.video.frame.PictureType.I if number % FPS == 0 else av.video.frame.PictureType.NONE
        )
        for packet in encoder.encode(frame):
            if packet.is_keyframe:
                keyframes.add(len(video))
            video.append(bytes(packet))
    for packet in encoder.encode(None):
        video.append(bytes(packet))
    return Clip(COLOURS[0], TONES[0], video, frozenset(keyframes), encode_opus(TONES[0], seconds))


def chromium_in(host: Host, folder: Path) -> Path:
    """A wrapper that Playwright starts as its browser: Chromium inside ``host``'s namespace."""
    wrapper = folder / f"chromium-{host.role}.sh"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {host.netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


async def wait_for(check: Any, what: str, within: float = MEDIA_TIMEOUT_S) -> Any:
    """Poll ``check()`` every 0.25 s until it returns something truthy."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class LabHearing:
    """Everything of one hearing in the lab; :meth:`close` stops it (the lab removes the hosts)."""

    def __init__(
        self, net: PhoneNetwork, folder: Path, playwright: Playwright, court_clip: Clip | None = None
    ) -> None:
        self.net = net
        self.court_clip = court_clip
        self.folder = folder
        self.playwright = playwright
        self.turn: Coturn | None = None
        self.server: LabServer | None = None
        self.court_host: HostLoop | None = None
        self.api: ServerApi | None = None
        self.court: Browser | None = None
        self.chromium: Chromium | None = None
        self.page: Page | None = None
        self.hearing_id = ""
        self.party_id = ""
        self.url = ""

    async def start(self, *, relay: bool = True) -> None:
        """coturn (when ``relay``), the server, the operator's hearing with the courtroom in it, the
        party's link, and the phone's browser (not yet on the page)."""
        turn_options: dict[str, str] = {}
        if relay:
            self.turn = start_coturn(
                self.net.turn, self.folder / "turn", SECRET, allowed_peers=[SERVER_ADDRESS]
            )
            turn_options = {
                "turn_urls": json.dumps(self.turn.urls()),
                "turn_secret": SECRET,
                "turn_ttl_s": "600",
            }
        self.server = start_server(self.net.server, self.folder / "server" / "data", **turn_options)
        self.court_host = HostLoop(self.net.server)
        await self.court_host.run(self._prepare())
        video, audio = PARTY.files(self.folder / "media")
        args = [a for a in CHROMIUM_ARGS if a != "--allow-loopback-in-peer-connection"]
        args += [f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={audio}"]
        if self.turn is not None:
            args.append(f"--ignore-certificate-errors-spki-list={self.turn.spki()}")  # trust the lab relay
        self.chromium = await self.playwright.chromium.launch(
            executable_path=str(chromium_in(self.net.phone, self.folder)), args=args
        )
        context = await self.chromium.new_context(
            **pixel7(self.playwright), locale="ru-RU", ignore_https_errors=True
        )
        context.set_default_timeout(20_000)
        self.page = await context.new_page()

    async def _prepare(self) -> None:
        assert self.server is not None
        api = ServerApi(self.server.base_url)
        await api.http.close()
        api.http = insecure_session()
        self.api = api
        await api.login("admin", self.server.admin_password)
        await api.staff_operator()
        self.hearing_id = (await api.schedule())["id"]
        party = await api.ok(
            "POST", f"/hearings/{self.hearing_id}/parties", {"role": "witness", "display_name": "Phone"}
        )
        self.party_id = party["id"]
        issued = await api.ok("POST", f"/hearings/{self.hearing_id}/parties/{self.party_id}/invitation")
        self.url = issued["url"]
        peer = await api.courtroom(self.hearing_id)
        await peer.send("open_waiting_room")
        await peer.expect("state", lambda m: m["hearing"]["status"] == "open")
        self.court = Browser(peer, self.court_clip or make_clip(0))

    async def on_court(self, coro: Any) -> Any:
        """Run ``coro`` on the courtroom's loop (inside the server host)."""
        assert self.court_host is not None
        return await self.court_host.run(coro)

    async def party_waits(self) -> None:
        """The party on the phone: link, details, device check, notice confirmed, waiting room."""
        page = self.page
        assert page is not None
        await page.goto(self.url)
        await page.click("#details-continue")
        await expect(page.locator("#device-continue")).to_be_enabled()
        await page.click("#device-continue")
        await expect(page.locator("#notice-text")).not_to_be_empty()
        await page.check("#notice-agree")
        await page.click("#notice-continue")
        await expect(page.locator("#screen-waiting")).to_be_visible()

    async def admit_and_start(self) -> dict[str, float]:
        """Admit the party, connect the courtroom's media, start; returns seconds after admission until
        both media connections are up (``connected_s``) and the phone decodes the courtroom (``media_s``)."""
        court, page = self.court, self.page
        assert court is not None and page is not None
        admitted_at = time.monotonic()
        await self.on_court(court.peer.send("admit", party_id=self.party_id))
        await expect(page.locator("#screen-hearing")).to_be_visible()
        await self.on_court(court.publish())
        try:
            await self.on_court(
                until(lambda: self.connections() == 2, MEDIA_TIMEOUT_S, "both media connections")
            )
        except TimeoutError:
            raise AssertionError(f"no media connection:\n{await self.diagnostics()}") from None
        connected_s = time.monotonic() - admitted_at
        await asyncio.sleep(1.0)
        await self.on_court(court.send("start"))
        await wait_for(self.phone_receives, "the phone to decode the courtroom's video and audio")
        media_s = time.monotonic() - admitted_at
        await self.on_court(
            until(lambda: self.court_receives() > 20, 20, "the courtroom to get the phone's media")
        )
        return {"connected_s": connected_s, "media_s": media_s}

    def connections(self) -> int:
        """How many participants' media connections the courtroom sees connected."""
        state = self.court.state() if self.court else None
        return 0 if state is None else sum(p["connection"] == "connected" for p in state["participants"])

    def party_state(self) -> str:
        """The party's state as the courtroom last saw it."""
        state = self.court.state() if self.court else None
        parties = [] if state is None else [p for p in state["participants"] if p["id"] == self.party_id]
        return parties[0]["state"] if parties else "absent"

    def court_receives(self) -> int:
        """Frames (audio and video) the courtroom has received from the phone so far."""
        return sum(self.court.received.values()) if self.court else 0

    async def phone_receives(self) -> dict[str, Any] | None:
        """The phone's inbound stats from the courtroom when it decodes both video and audio."""
        assert self.page is not None and self.court is not None
        entry = (await self.page.evaluate(STATS_JS)).get(self.court.participant_id) or {}
        ok = entry.get("framesDecoded", 0) > 0 and entry.get("totalSamplesReceived", 0) > 0
        return entry if ok else None

    async def selected_pairs(self) -> dict[str, Any]:
        """The phone's selected candidate pairs (publish and subscribe) from getStats()."""
        assert self.page is not None
        result: dict[str, Any] = await self.page.evaluate(SELECTED_PAIRS_JS)
        return result

    async def diagnostics(self) -> str:
        """Court state, the phone's candidates, coturn's and the server's logs (for failure messages)."""
        phone = await self.page.evaluate(CANDIDATES_JS) if self.page is not None else None
        turn = self.turn.log()[-3000:] if self.turn is not None else ""
        server = self.server.log()[-4000:] if self.server is not None else ""
        court = self.court.state() if self.court is not None else None
        return f"court state {court}\nphone {phone}\nturn log:\n{turn}\nserver log:\n{server}"

    async def end_and_seal(self) -> dict[str, Any]:
        """The operator ends the hearing; its record once sealed."""
        assert self.court is not None and self.api is not None
        await self.on_court(self.court.send("end"))
        record: dict[str, Any] = await self.on_court(sealed_record(self.api, self.hearing_id))
        return record

    def recorded_packets(self, record: dict[str, Any]) -> dict[str, int]:
        """Packets in each of the party's recorded track files (by kind)."""
        import av

        assert self.server is not None
        folder = self.server.data_dir / "recordings" / record["folder"]
        counts: dict[str, int] = {}
        for entry in record["files"]:
            if self.party_id in entry["path"] and entry["path"].endswith(".webm"):
                kind = entry["path"].rsplit("-", 2)[-2]
                with av.open(str(folder / entry["path"])) as container:
                    counts[kind] = counts.get(kind, 0) + sum(1 for p in container.demux() if p.size)
        return counts

    async def events(self) -> list[dict[str, Any]]:
        """The hearing's confirmation log entries as the API lists them."""
        assert self.api is not None
        entries: list[dict[str, Any]] = await self.on_court(self.api.events(self.hearing_id))
        return entries

    async def close(self) -> None:
        """Stop the browser, the courtroom and the operator's client."""
        if self.chromium is not None:
            await self.chromium.close()
        if self.court_host is not None:
            if self.court is not None:
                await self.court_host.run(self.court.close())
            if self.api is not None:
                await self.court_host.run(self.api.close())
            self.court_host.close()
