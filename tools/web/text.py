"""Tokenising shared by BM25 search, evidence selection and keyword scoring."""

from __future__ import annotations

import re

from placecell.tools.textnorm import fold

# A small English stop-word list (function words plus web boilerplate). Content words are kept.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yourself yourselves one two new like get got make made many
    much may might must shall us via per etc really well even still yet ever every whose them
    user users likes liked enjoy enjoys enjoyed reading read reads book books recommend recommendation
    recommendations example examples item items also based include includes including
    film films movie movies watch watched reader readers person people viewer viewers someone
    page site home click cookie cookies privacy policy terms login sign menu search
    """.split()
)

_PARENTHESISED = re.compile(r"\([^)]*\)")
_WORD = re.compile(r"[a-z0-9][a-z0-9'\-]*[a-z0-9]|[a-z0-9]")


def words(text: str) -> list[str]:
    """Lower-case word tokens (apostrophes and inner hyphens kept), accents on Latin letters folded
    ("Misérables" is "miserables", not "mis" + "rables")."""
    return _WORD.findall(fold(text).lower())


def content_words(text: str, min_len: int = 3) -> list[str]:
    """Words minus stop words and very short tokens; order and repeats kept (BM25 needs counts)."""
    return [w for w in words(text) if len(w) >= min_len and w not in STOPWORDS and not w.isdigit()]


_ENTITY = re.compile(r"\b(?:[A-Z][a-zA-Z'\-]+)(?:\s+(?:of|the|and|de|von|van|la|le)?\s*[A-Z][a-zA-Z'\-]+)*")


def entities(text: str) -> set[str]:
    """Capitalised word runs ("Anne Frank", "World War II") as lower-case strings: a cheap
    stand-in for named entities. Sentence-initial single words that are stop words are dropped.
    Accents on Latin letters are folded first, so "Émile Zola" is one name ("emile zola"), the
    same on a page that spells it "Emile Zola", and "Cité" is not cut to "Cit"."""
    found = set()
    for match in _ENTITY.finditer(fold(text)):
        phrase = match.group(0).strip()
        if " " not in phrase and phrase.lower() in STOPWORDS:
            continue
        if len(phrase) >= 3:
            found.add(phrase.lower())
    return found


def drop_parenthesised(title: str) -> str:
    """The title without its "(...)" parts (series suffixes, alternative titles)."""
    return _PARENTHESISED.sub(" ", title)


def normalise_title(title: str) -> str:
    """Lower case, punctuation to spaces, series suffix "(...)" dropped: the form titles are
    matched in page text with."""
    return " ".join(words(drop_parenthesised(title)))
