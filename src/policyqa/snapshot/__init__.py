"""The index on disk: whole builds, incremental updates, and a published snapshot read back."""
