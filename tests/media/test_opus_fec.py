"""In-band FEC in the Opus fmtp of the SDP the server answers and offers."""

from __future__ import annotations

from media.codecs import with_opus_fec

OFFER = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96 0\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"


def test_fmtp_added_when_missing_and_extended_when_present() -> None:
    assert "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n" in with_opus_fec(OFFER)
    chrome = "v=0\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10\r\n"
    assert "a=fmtp:111 minptime=10;useinbandfec=1\r\n" in with_opus_fec(chrome)


def test_idempotent_and_other_codecs_untouched() -> None:
    once = with_opus_fec(OFFER)
    assert with_opus_fec(once) == once
    assert "a=fmtp:0" not in once
    assert with_opus_fec("v=0\r\na=rtpmap:97 VP8/90000\r\n") == "v=0\r\na=rtpmap:97 VP8/90000\r\n"
