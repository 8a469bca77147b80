"""Dataset runs: a task (a server-side target, or the client's code) over a dataset's items,
each result scored; started, resumed after a restart, compared (README: "Dataset runs")."""
