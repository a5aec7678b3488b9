"""bt-server."""
