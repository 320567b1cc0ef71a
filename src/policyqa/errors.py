"""Domain errors: raised by the library, translated into messages at the edges (cli, api)."""

# Where a message sends people for the list of documents: the HTTP API's endpoint, which the CLI's edge
# replaces with its own command (`policyqa documents`).
LIST_DOCUMENTS = "GET /api/documents"


class PolicyQAError(Exception):
    """Base class; the message says what went wrong and what to do."""


class CorpusError(PolicyQAError):
    """The corpus folder is missing or holds no documents."""


class DocumentError(PolicyQAError):
    """One document cannot be read; the message names the file."""


class ModelError(PolicyQAError):
    """The embedding model cannot be found, converted or loaded."""


class IndexMissingError(PolicyQAError):
    """There is no index yet."""


class IndexMismatchError(PolicyQAError):
    """The index on disk was built with another model, format or settings and must be rebuilt."""


class ModelMismatchError(IndexMismatchError):
    """The index on disk was built with another embedding model: refused, never silently rebuilt."""


class QueryError(PolicyQAError):
    """The query is empty or otherwise unusable."""


class UploadError(PolicyQAError):
    """A document offered for the corpus is refused (too large, unknown type, unreadable)."""


class TooLargeError(UploadError):
    """A document offered for the corpus is over the size limit."""


class NotFoundError(PolicyQAError):
    """No document with that id."""


class FilterError(QueryError):
    """A search filter's value is unusable; names the field and the rule it breaks."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class QuestionError(PolicyQAError):
    """An operator's known question is refused (too short or long, a string its document does not hold,
    already there); names the field and the rule it breaks."""

    def __init__(self, field: str, rule: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.status = status  # 409: the same question is already attached to that document


class StoreError(PolicyQAError):
    """The vector store cannot be reached or answers with an error (a server down, a timeout); the message
    says which and why. Searches fail with it until the store is back."""
