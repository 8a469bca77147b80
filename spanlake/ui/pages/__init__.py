"""One module per page family; each handler calls the same domain functions as its /api twin."""
