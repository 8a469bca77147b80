"""The models each route declares: query parameters, bodies and replies (api/contract.py)."""
