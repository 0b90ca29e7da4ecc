"""The archive: search, playback with ranges, export packages, verification, access audit and retention.

Its routes are mounted on the application by :mod:`hearing_server.web.app` (:func:`archive.routes.setup`).
"""
