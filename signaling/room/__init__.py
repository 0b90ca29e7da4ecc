"""The live hearing room, split by job: who is in it (participant), the hearing's life (hearing), what
people may do (commands), what each sees (views), its media and recording (media_session), and the
storage it reaches only through :class:`signaling.room.store.RoomStore`."""
