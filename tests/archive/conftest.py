"""Fixtures for the archive tests: the app with the archive, staff sessions, sealed hearings made on disk."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from archive_bench import ArchiveBench, Clips
from archive_media import write_audio, write_video

from hearing_server.config import Config
from hearing_server.web.app import create_app
from recording.seal import CourtSigner, generate_court_certificate

COURT = "Алматинский городской суд"
EPOCH = datetime(2026, 3, 2, 5, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    """A one-second VP8 WebM and Opus WebM, made once per run."""
    folder = tmp_path_factory.mktemp("clips")
    epoch_us = int(EPOCH.timestamp() * 1_000_000)
    write_video(folder / "video.webm", "judge", epoch_us)
    write_audio(folder / "audio.webm", "judge", epoch_us)
    return Clips((folder / "video.webm").read_bytes(), (folder / "audio.webm").read_bytes())


@pytest.fixture(scope="session")
def court_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[CourtSigner, Path, Path]:
    """A development court certificate and key, made once per run."""
    folder = tmp_path_factory.mktemp("court")
    signer = generate_court_certificate(folder / "court.pem", folder / "court-key.pem", COURT)
    return signer, folder / "court.pem", folder / "court-key.pem"


@pytest.fixture
async def bench(
    aiohttp_client: Any, config: Config, clips: Clips, court_keys: tuple[CourtSigner, Path, Path]
) -> AsyncIterator[ArchiveBench]:
    """The application with the archive, four staff accounts (one per role) and helpers to make hearings."""
    signer, cert, key = court_keys
    cfg = config.model_copy(update={"court_cert": cert, "court_key": key, "court_name": COURT})
    app = create_app(cfg)
    client = await aiohttp_client(app)
    bench = ArchiveBench(client=client, app=app, config=cfg, clips=clips, signer=signer)
    await bench.add_staff()
    yield bench
    shutil.rmtree(cfg.recordings_dir, ignore_errors=True)
