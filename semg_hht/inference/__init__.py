"""inference.py's workflow: a checkpoint applied to files or folders, one prediction per file or
per recording, written as JSON. Uses io, model, data and evaluation."""
