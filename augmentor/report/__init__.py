"""Everything a person looks at: command summaries (JSON and rich view), tables, image grids and plots."""
