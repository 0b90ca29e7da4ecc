"""Many nodes on one PostgreSQL: node heartbeats, a lease per live hearing, placement, the reaper, drain."""
