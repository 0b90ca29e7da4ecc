"""Who is calling: staff passwords and sessions, login rate limiting, invitation tokens, role policy."""
