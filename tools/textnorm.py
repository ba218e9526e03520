"""Accent folding shared by every lexical matcher: BM25 tokens, KG entity names, passage titles.

Questions are often typed without accents ("Aschenbrodel", "Tekeze River") while the passages that
answer them have them ("Aschenbrödel", "Tekezé River"). Before this, BM25 saw two different words
and the entity normaliser turned "ö" into a space ("aschenbr del"), so neither the lexical ranking
nor the entity and title matches could join them (evals/RESULTS.md, "Fold accents").

Only marks on Latin letters are dropped: other scripts keep theirs (Japanese dakuten and Cyrillic
"й" carry meaning, and transliterating whole scripts, as anyascii or unidecode do, would change how
their text is tokenised).
"""

from __future__ import annotations

import unicodedata

# Latin letters that Unicode does not decompose into a base letter plus a mark.
_UNDECOMPOSED = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss",
                               "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th",
                               "Þ": "Th", "ı": "i"})


def fold(text: str) -> str:
    """`text` with the diacritics of Latin letters removed ("Akinoshū Kenji" -> "Akinoshu Kenji") and
    compatibility forms unified (NFKC: "ﬁ" -> "fi", full-width letters -> ASCII). ASCII text is
    returned unchanged."""
    if text.isascii():
        return text
    kept: list[str] = []
    for ch in unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED)):
        if unicodedata.combining(ch) and kept and kept[-1].isascii() and kept[-1].isalpha():
            continue  # a mark on a Latin letter
        kept.append(ch)
    return unicodedata.normalize("NFKC", "".join(kept))
