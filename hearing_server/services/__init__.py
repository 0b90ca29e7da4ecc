"""Court rules applied to stored hearings, parties, invitations and accounts (no HTTP here)."""
