"""Fixtures for the recording tests: real encoded media, a recorded three-party hearing, a court seal."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from recording_media import (
    COURT,
    HEARING_ID,
    PARTIES,
    EncodedMedia,
    RecordedHearing,
    encode_opus,
    encode_vp8,
    hearing_frames,
)

from hearing_server.domain.events import EventType
from recording.confirmation_log import ConfirmationLog
from recording.recorder import HearingRecorder
from recording.recorder_types import RecorderEvent
from recording.seal import CourtSigner, generate_court_certificate


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes seconds (child processes, real-time recording, rendering)"
    )


@pytest.fixture(scope="session")
def media() -> list[EncodedMedia]:
    """Each party's clip, encoded once per session."""
    return [
        EncodedMedia(
            party,
            offset,
            seconds,
            encode_vp8(party.rgb, party.width, party.height, round(seconds * 30)),
            encode_opus(party.tone_hz, round(seconds * 50)),
        )
        for party, offset, seconds in PARTIES
    ]


@pytest.fixture(scope="session")
def recorded_hearing(tmp_path_factory: pytest.TempPathFactory, media: list[EncodedMedia]) -> RecordedHearing:
    """Record the three-party hearing once (explicit wall clocks, no sleeping); tests change only copies."""
    folder = tmp_path_factory.mktemp("hearings") / "court-1" / "2024" / "05" / HEARING_ID
    epoch = time.time() - 60
    events: list[RecorderEvent] = []
    recorder = HearingRecorder(
        folder, HEARING_ID, on_event=events.append, epoch=epoch, min_free_bytes=0, warn_free_bytes=0
    )
    with ConfirmationLog(folder, HEARING_ID) as log:
        log.append(EventType.RECORDING_STARTED, actor="system")
        recorder.start()
        for m in media:
            recorder.track_started(m.party.video)
            recorder.track_started(m.party.audio)
            log.append(
                EventType.PARTY_JOINED,
                actor="system",
                party_id=m.party.participant_id,
                details={"ip": "127.0.0.1"},
            )
        for frame in hearing_frames(media, epoch):
            recorder.frame(frame)
        for m in media:
            recorder.track_ended(m.party.video)
            recorder.track_ended(m.party.audio)
        recorder.stop()
        log.append(EventType.RECORDING_STOPPED, actor="system")
        log.append(EventType.HEARING_ENDED, actor="judge")
    assert recorder.failure is None
    return RecordedHearing(folder, epoch, events, recorder)


@pytest.fixture(scope="session")
def court(tmp_path_factory: pytest.TempPathFactory) -> tuple[CourtSigner, Path]:
    """A self-signed development court certificate and its PEM path."""
    folder = tmp_path_factory.mktemp("court")
    signer = generate_court_certificate(folder / "court.pem", folder / "court.key", COURT)
    return signer, folder / "court.pem"


@pytest.fixture
def hearing_copy(tmp_path: Path, recorded_hearing: RecordedHearing) -> Path:
    """A private copy of the recorded hearing folder (log still open for appends)."""
    target = tmp_path / HEARING_ID
    shutil.copytree(recorded_hearing.folder, target)
    return target
