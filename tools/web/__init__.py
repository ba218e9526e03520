"""The web path: safe fetching, search backends (ddgs, local BM25, record/replay) and the local web.

Everything fetched from the web is untrusted data (see `untrusted.py`).
"""

from placecell.tools.web.fetch import FetchedPage, fetch_many, fetch_page
from placecell.tools.web.safety import FetchError
from placecell.tools.web.search import SearchHit, SearchResults

__all__ = ["FetchError", "FetchedPage", "SearchHit", "SearchResults", "fetch_many", "fetch_page"]
