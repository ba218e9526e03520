"""CTR rows derived from the shipped catalogs: a rating >= 4 is a click, every other rating is not.

Fields are the user, the item and the item's metadata, so a trained model can score any (user, item)
pair the recommendation graph proposes from the catalog alone (no per-request context needed).
The split is per user in time order (each user's last 20 % is the test), as for the carousels.
"""

from __future__ import annotations

import numpy as np

from placecell.tools.ctr.data import RawTable, TableSchema
from placecell.tools.recsys_data import Catalog, Item, split_by_user

BOOK_FIELDS = ["user", "item", "author", "decade", "tag1", "tag2", "tag3"]
MOVIE_FIELDS = ["user", "item", "genre1", "genre2", "genre3", "decade", "tag"]


def catalog_fields(catalog: Catalog) -> list[str]:
    return BOOK_FIELDS if catalog.kind == "books" else MOVIE_FIELDS


def _decade(year: int | None) -> str:
    if year is None:
        return ""
    return "pre1900" if year < 1900 else f"{year // 10 * 10}s"


def _pad(values: tuple[str, ...] | list[str], n: int) -> list[str]:
    return (list(values) + [""] * n)[:n]


def item_values(catalog: Catalog, item: Item | None) -> list[str]:
    """Item-side field values (everything but `user`); an unknown item gets all-unseen values."""
    if item is None:
        return [""] * (len(catalog_fields(catalog)) - 1)
    if catalog.kind == "books":
        return [item.id, _pad(item.creators, 1)[0], _decade(item.year)] + _pad(item.tags, 3)
    genres = [t for t in item.tags[:3] if t[:1].isupper()]  # genres are capitalised, user tags lower-case
    user_tags = [t for t in item.tags if not t[:1].isupper()]
    return [item.id] + _pad(genres, 3) + [_decade(item.year), _pad(user_tags, 1)[0]]


def pair_row(catalog: Catalog, user_id: str, item_id: str) -> list[str]:
    return [str(user_id)] + item_values(catalog, catalog.items.get(str(item_id)))


def catalog_table(catalog: Catalog) -> tuple[RawTable, np.ndarray]:
    """All rated pairs as a CTR table, and the per-user temporal test mask."""
    inter = catalog.interactions
    cache: dict[str, list[str]] = {}
    rows = []
    for user, item in zip(inter.users.tolist(), inter.items.tolist()):
        if item not in cache:
            cache[item] = item_values(catalog, catalog.items[item])
        rows.append([user] + cache[item])
    labels = (inter.values >= (catalog.positive_threshold or 0.0)).astype(np.float32)
    schema = TableSchema(f"catalog:{catalog.name}", catalog_fields(catalog), label="rating>=4")
    return RawTable(schema, np.asarray(rows, dtype=object), labels), split_by_user(inter.users)
