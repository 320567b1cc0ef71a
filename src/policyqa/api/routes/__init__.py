"""The API's routers, one per resource: health, search, documents, index (update jobs)."""
