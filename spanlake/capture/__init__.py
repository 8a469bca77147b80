"""spanlake.capture"""
