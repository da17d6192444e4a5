"""What every capability shares: errors, console (progress on stderr), atomic outputs, worker pools,
the run-folder format and the device choice. Nothing here knows about images or models."""
