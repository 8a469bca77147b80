"""spanlake.api"""
