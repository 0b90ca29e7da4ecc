"""The REST API under /api/v1 and the operations endpoints, all declared in one route table."""
