"""search_rerank: hybrid lexical + dense retrieval, cross-encoder reranking and a long-tail boost."""

from .candidate import Candidate
from .filters import Filters
from .product import Product
from .settings import Settings, load_settings

__all__ = ["Candidate", "Filters", "Product", "Settings", "load_settings"]
__version__ = "0.1.0"
