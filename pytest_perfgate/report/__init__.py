"""Reports built from a run's results: the terminal table, the results file (json), Markdown,
HTML, JUnit properties and GitHub workflow commands."""
