"""The HTTP API: request validation (pure), wire views (pure) and the Flask app factory."""
