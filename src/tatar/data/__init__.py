"""Dataset preparation: official label files -> training-record JSONL (`tatar data prepare`)."""
