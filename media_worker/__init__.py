"""Media worker processes: whole hearings' forwarding and recording, one process per core.

A worker owns the :class:`media.router.Router` and the :class:`recording.recorder.HearingRecorder`
of each hearing placed on it and talks to the control plane over one private channel
(:mod:`media_worker.channel`, messages in :mod:`media_worker.messages`); it never touches the
database or the confirmation log.
"""
