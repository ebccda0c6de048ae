"""search_rerank: hybrid lexical + dense retrieval, cross-encoder reranking and a long-tail boost."""

from .core.candidate import Candidate
from .core.filters import Filters
from .core.product import Product
from .core.settings import Settings, load_settings

__all__ = ["Candidate", "Filters", "Product", "Settings", "load_settings"]
__version__ = "0.1.0"
