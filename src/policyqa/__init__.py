"""policyqa: ask questions of Chinese policy documents and get ranked, cited passages, offline."""

__version__ = "0.1.0"
