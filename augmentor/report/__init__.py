"""Everything a person looks at: rich tables, image grids and matplotlib plots (headless)."""
