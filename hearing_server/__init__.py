"""hearing-server: a self-hosted WebRTC video-hearing server for courts."""

__version__ = "0.1.0"
