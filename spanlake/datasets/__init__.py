"""spanlake.datasets"""
