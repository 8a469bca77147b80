"""The web UI: server-rendered pages on the HTTP port, calling the same domain functions as /api."""
