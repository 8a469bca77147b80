"""spanlake.ingest"""
