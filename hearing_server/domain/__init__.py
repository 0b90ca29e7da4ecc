"""The court domain: hearings, parties, staff and what happens to them."""
