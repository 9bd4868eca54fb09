"""Reports built from Comparisons: the terminal table (more formats come with later releases)."""
