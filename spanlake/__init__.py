"""spanlake: an OpenTelemetry trace backend for LLM applications."""

__version__ = "0.1.0"
