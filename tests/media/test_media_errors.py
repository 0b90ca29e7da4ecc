"""Unusable or hostile SDP is refused with a MediaError and harms no one else."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiortc import RTCPeerConnection
from media_harness import PacketSource, Room, client_configuration, wait_for

from media.errors import MediaError, MediaErrorCode

pytestmark = pytest.mark.media


async def client_offer(room: Room, kinds: list[str]) -> str:
    pc = RTCPeerConnection(client_configuration())
    clip = room.clips[4]
    for kind in kinds:
        source = PacketSource(kind, clip.video if kind == "video" else clip.audio)
        pc.addTransceiver(source, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


def mutations(sdp: str, count: int, seed: int = 7) -> list[str]:
    """Real offers with lines dropped, duplicated, truncated or garbled."""
    rng = random.Random(seed)
    lines = sdp.split("\r\n")
    out = []
    for _ in range(count):
        mutated = list(lines)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(mutated))
            action = rng.choice(["drop", "dup", "cut", "garble"])
            if action == "drop":
                del mutated[i]
            elif action == "dup":
                mutated.insert(i, mutated[i])
            elif action == "cut":
                mutated[i] = mutated[i][: rng.randrange(len(mutated[i]) + 1)]
            else:
                mutated[i] = "".join(rng.choice("a=:/ 0123456789xyz\x00é") for _ in range(rng.randint(1, 40)))
        out.append("\r\n".join(mutated))
    return out


async def test_bad_sdp_is_refused_and_others_keep_receiving(room: Room) -> None:
    a, b = room.client("a", 0), room.client("b", 1)
    await a.join()
    await b.join()
    assert await wait_for(lambda: a.count("b", "video") > 5 and b.count("a", "video") > 5, 8)

    good = await client_offer(room, ["audio", "video"])
    video_only = await client_offer(room, ["video"])
    refused: dict[str, MediaErrorCode] = {
        "garbage": MediaErrorCode.SDP_INVALID,
        "": MediaErrorCode.SDP_INVALID,
        good[: len(good) // 3]: MediaErrorCode.SDP_INVALID,  # truncated before any usable m-line
        good.replace("a=ice-ufrag", "a=x-ufrag"): MediaErrorCode.SDP_INVALID,
        "v=0\r\n" + "a=x\r\n" * 20000: MediaErrorCode.SDP_INVALID,  # oversized
        video_only.replace("VP8/90000", "AV1X/90000"): MediaErrorCode.CODEC_UNSUPPORTED,
        await client_offer(room, ["video", "video"]): MediaErrorCode.MEDIA_UNSUPPORTED,
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n": MediaErrorCode.MEDIA_UNSUPPORTED,
    }
    for sdp, code in refused.items():
        with pytest.raises(MediaError) as error:
            await room.router.publish("x", sdp)
        assert error.value.code == code, (sdp[:80], error.value)
    with pytest.raises(MediaError):
        await room.router.publish("x", None)  # type: ignore[arg-type]
    # an existing participant's bad re-publish leaves its working connections alone
    with pytest.raises(MediaError):
        await room.router.publish("a", "garbage")
    with pytest.raises(MediaError) as error:
        await room.router.subscriber_answer("a", "garbage")
    assert error.value.code == MediaErrorCode.NO_OFFER_PENDING
    with pytest.raises(MediaError) as error:
        await room.router.subscriber_answer("nobody", good)
    assert error.value.code == MediaErrorCode.UNKNOWN_PARTICIPANT

    # mutated real offers: either accepted or refused with MediaError, never anything else
    outcomes = {"accepted": 0, "refused": 0}
    for index, sdp in enumerate(mutations(good, 30)):
        try:
            await room.router.publish(f"fuzz{index}", sdp)
        except MediaError:
            outcomes["refused"] += 1
        else:
            outcomes["accepted"] += 1
            await room.router.leave(f"fuzz{index}")
    assert outcomes["refused"] > 0

    assert sorted(room.router.participant_ids) == ["a", "b"]
    counts = (a.count("b", "video"), b.count("a", "video"), a.count("b", "audio"))
    await asyncio.sleep(1.0)
    assert a.count("b", "video") > counts[0] + 8 and b.count("a", "video") > counts[1] + 8
    assert a.count("b", "audio") > counts[2] + 30
    assert room.hearing.state_of("a") == room.hearing.state_of("b") == "connected"
    assert not room.hearing.offer_errors
