"""The SFU of hearing-server: forwards the media of each hearing between its participants.

No transcoding and no web framework here; the live room drives a :class:`media.router.Router`
through the interfaces in :mod:`media.contract`, which imports neither aiortc nor aiohttp.
"""
