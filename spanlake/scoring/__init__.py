"""spanlake.scoring"""
