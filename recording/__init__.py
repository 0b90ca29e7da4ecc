"""Evidence-grade recording of hearings: tracks, confirmation log, seal, verification and playback copy.

No web framework or database here: the server wires these pieces and mirrors
the confirmation log to its database through ``ConfirmationLog.on_append``.
The playback copy (``recording.composite``) is imported on its own: it is also
the entry point of the render process.
"""
