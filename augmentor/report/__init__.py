"""Reports: plots (matplotlib, headless) and the markdown/JSON of experiments."""
