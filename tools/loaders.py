"""Turn ingest inputs into passages: files (.txt .md .html .pdf), folders, JSONL corpora of
{"title", "text"} and URLs.

A JSONL record is one passage, never split: its passage string is `title + "\n" + text`
(NeuroPath/HippoRAG). Files and pages are chunked on paragraph boundaries. Problems with one
input (binary, empty, unreadable, a bad JSONL line, an unreachable URL) become warnings that
name it; the good inputs still load.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from placecell.tools.stores.passages import Passage, document_key, passage_id

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl"}


@dataclass
class LoadResult:
    passages: list[Passage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sources: int = 0
    # document (a file's absolute path, a URL) -> the ids of its passages, in order
    documents: dict[str, list[str]] = field(default_factory=dict)
    # documents read in full this time: their stored passages are replaced by these. A file that
    # is now empty, unreadable or has a bad JSONL line is not complete: what is stored stays.
    complete: set[str] = field(default_factory=set)
    folders: list[str] = field(default_factory=list)  # folders walked, as document names
    notices: list[str] = field(default_factory=list)  # said, but not failed inputs (a dead link in a folder)

    def add_document(self, document: str, passages: list[Passage], complete: bool) -> None:
        self.passages.extend(passages)
        ids = self.documents.setdefault(document, [])
        ids.extend(p.id for p in passages if p.id not in ids)
        if complete and passages:
            self.complete.add(document)


def is_url(text: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text))


def record_passage(title: str, text: str, source: str) -> Passage:
    full = f"{title}\n{text}" if title else text
    return Passage(id=passage_id(full), title=title, text=full, source=source)


def chunk_text(text: str, max_chars: int = 1200) -> list[str]:
    """Paragraph-packed chunks of at most ~max_chars; a longer paragraph is split on sentences."""
    if max_chars < 1:  # the hard cut below would never shorten a sentence
        raise ValueError(f"max_chars must be positive, not {max_chars}")
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    pieces: list[str] = []
    for p in paras:
        if len(p) <= max_chars:
            pieces.append(p)
            continue
        sentences = re.split(r"(?<=[.!?])\s+", p)
        buf = ""
        for s in sentences:
            while len(s) > max_chars:  # no sentence boundary at all: hard cut
                pieces.append(s[:max_chars])
                s = s[max_chars:]
            if buf and len(buf) + 1 + len(s) > max_chars:
                pieces.append(buf)
                buf = s
            else:
                buf = f"{buf} {s}".strip()
        if buf:
            pieces.append(buf)
    chunks: list[str] = []
    buf = ""
    for piece in pieces:
        if buf and len(buf) + 2 + len(piece) > max_chars:
            chunks.append(buf)
            buf = piece
        else:
            buf = f"{buf}\n\n{piece}".strip()
    if buf:
        chunks.append(buf)
    return chunks


def document_passages(title: str, text: str, source: str, max_chars: int) -> list[Passage]:
    return [record_passage(title, chunk, source) for chunk in chunk_text(text, max_chars)]


_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def _declared_charset(data: bytes) -> str | None:
    """The encoding an HTML file declares in its first 4 KB (`<meta charset>` or http-equiv), if
    Python knows it."""
    import codecs

    match = _DECLARED_CHARSET.search(data[:4096])
    if not match:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


def check_encoding(encoding: str) -> str:
    """`utf-8` (the default: UTF-8, or UTF-16 with its byte-order mark) or a codec Python knows;
    raises ValueError naming the problem."""
    import codecs

    if encoding == "utf-8":
        return encoding
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r} (give a codec name such as cp1252, latin-1 or "
                         "shift_jis)") from None


def _read_text_file(path: Path, html: bool = False, encoding: str = "utf-8") -> str:
    """A text file's text. UTF-8 first, always (most files of a folder are); a file that is not
    UTF-8 is read in what an HTML file declares, else in `encoding` when the user named one.
    Never guessed (charset detection reads short Western text as Baltic or Cyrillic codepages)
    and never silently with replacement characters."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark (Windows editors)
        # Not second-guessed: 8-bit text that happens to start with FF FE reads as CJK-looking noise,
        # but a test that catches it also refuses a one-line Japanese note with no space or line break.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ValueError("damaged UTF-16 text") from None
    if b"\x00" in data[:8192]:
        raise ValueError("binary file")
    try:
        return data.decode("utf-8-sig")  # a UTF-8 byte-order mark is not part of the text
    except UnicodeDecodeError:
        pass
    declared = _declared_charset(data) if html else None
    if declared:  # older pages saved as windows-1252, Shift_JIS, ... say so in a <meta> tag
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            raise ValueError(f"not {declared} text, as it declares") from None
    if encoding != "utf-8":
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ValueError(f"neither UTF-8 nor {encoding} text (byte {exc.start})") from None
    raise ValueError("not UTF-8 text" + ("" if not html else ", and no <meta charset> names another encoding")
                     + ": --encoding NAME (cp1252, latin-1, ...) reads it")


def _html_text(html: str, url: str = "") -> tuple[str, str]:
    from placecell.tools.web.fetch import extract_text

    return extract_text(html, url)


def _pdf_text(path: Path) -> str:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    # pypdf logs what it repairs or gives up on ("invalid pdf header", "EOF marker not found"); a
    # file it cannot read gets our one-line warning instead, and one it repaired needs no word.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    try:
        reader = PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise ValueError(f"unreadable PDF ({str(exc)[:80]})") from None
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on hostile files (found: DependencyError,
        # NotImplementedError, RecursionError, AssertionError, AttributeError, LimitReachedError); one file only
        raise ValueError(f"unreadable PDF ({type(exc).__name__}: {str(exc)[:80]})") from None


def load_jsonl(path: Path, result: LoadResult) -> None:
    bad: list[int] = []
    records: list[Passage] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                title, text = rec.get("title", ""), rec["text"]
                # strings only: str(None), str(["a"]) or str(NaN) would be stored as if they were text
                if title is None:
                    title = ""
                if not isinstance(title, str) or not isinstance(text, str) or not text.strip():
                    raise ValueError
                passage = record_passage(title.strip(), text.strip(), f"{document_key(path)}:{lineno}")  # hashes: raises on a lone surrogate
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):  # ValueError covers Unicode errors
                bad.append(lineno)
                continue
            records.append(passage)
    result.add_document(document_key(path), records, complete=not bad)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        result.warnings.append(f"{path}: skipped {len(bad)} bad JSONL line(s): {shown}")
    elif not records:
        result.warnings.append(f"{path}: skipped (empty)")


def load_file(path: Path, result: LoadResult, max_chars: int, encoding: str = "utf-8") -> None:
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            load_jsonl(path, result)
            return
        if suffix == ".pdf":
            text, title = _pdf_text(path), path.stem
        elif suffix in HTML_SUFFIXES:
            title, text = _html_text(_read_text_file(path, True, encoding))  # returns (title, text)
            title = title or path.stem
        else:
            text, title = _read_text_file(path, False, encoding), path.stem
    except (ValueError, OSError) as exc:
        result.warnings.append(f"{path}: skipped ({exc})")
        return
    if not text.strip():
        result.warnings.append(f"{path}: skipped (empty)")
        return
    # cited by the document's name, the absolute path: an app in another folder can open it
    result.add_document(document_key(path), document_passages(title, text, document_key(path), max_chars), complete=True)


def load_url(url: str, result: LoadResult, max_chars: int, allow_hosts, timeout: float, max_bytes: int) -> None:
    import httpx

    from placecell.errors import PlacecellError
    from placecell.tools.web.fetch import fetch_page
    from placecell.tools.web.untrusted import instruction_like

    try:
        page = fetch_page(url, allow_hosts=allow_hosts, timeout=timeout, max_bytes=max_bytes)
    except PlacecellError as exc:
        result.warnings.append(f"{url}: skipped ({exc})")
        return
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # what slips past fetch_page: this URL only
        result.warnings.append(f"{url}: skipped (fetch failed: {type(exc).__name__}: {str(exc)[:120]})")
        return
    if not page.text.strip():
        result.warnings.append(f"{url}: skipped (no text extracted)")
        return
    passages = document_passages(page.title or url, page.text, url, max_chars)
    # Web text is data: a passage that addresses the model ("ignore previous instructions", "note to
    # the AI reading this: ...") would reach the reader's prompt as if it were part of the answer's
    # evidence, and small models follow it. Such passages are not stored.
    kept = [p for p in passages if not instruction_like(p.text)]
    if len(kept) < len(passages):
        result.warnings.append(f"{url}: {len(passages) - len(kept)} of {len(passages)} passage(s) not stored: "
                               "they read as instructions to the model (web pages are data, not instructions)")
    result.add_document(url, kept, complete=True)


def _utf8_name(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
        return False


def _shown(name: str) -> str:
    """A name with bytes that are not UTF-8 shown as U+FFFD (it cannot be printed or stored as is)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def load_sources(sources: list[str], *, max_chars: int = 1200, allow_hosts=(), timeout: float = 20.0,
                 max_bytes: int = 5_000_000, encoding: str = "utf-8") -> LoadResult:
    """`encoding`: for text and HTML files that are not UTF-8 (see `_read_text_file`)."""
    encoding = check_encoding(encoding)
    result = LoadResult()
    for src in sources:
        result.sources += 1
        if not _utf8_name(src):  # a document's name is its key in the registry: it must be text
            result.warnings.append(f"{_shown(src)}: skipped (its name is not UTF-8; rename it)")
            continue
        if is_url(src):
            if src.lower().startswith("file:"):
                result.warnings.append(f"{src}: skipped (file: URLs are refused; pass the path instead)")
            else:
                load_url(src, result, max_chars, allow_hosts, timeout, max_bytes)
            continue
        path = Path(src).expanduser()
        if path.is_dir():
            result.folders.append(document_key(path))
            # Hidden files and folders (.git, .venv, editor backups) are not documents: a project's
            # .venv alone holds hundreds of .txt/.md/.html files. Name one to ingest it.
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            broken = sorted(p for p in path.rglob("*") if p.is_symlink() and not p.exists()
                            and p.suffix.lower() in SUPPORTED and not any(part.startswith(".") for part in p.relative_to(path).parts))
            result.notices += [f"{_shown(str(p))}: skipped (a link to {_shown(os.readlink(p))}, which does not exist)"
                               for p in broken]
            if not files and not broken:
                result.warnings.append(f"{path}: no supported files ({', '.join(sorted(SUPPORTED))})")
            for f in files:
                if _utf8_name(str(f)):
                    load_file(f, result, max_chars, encoding)
                else:
                    result.warnings.append(f"{_shown(str(f))}: skipped (its name is not UTF-8; rename it)")
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED:
                result.warnings.append(f"{path}: skipped (unsupported type {path.suffix or 'none'})")
            else:
                load_file(path, result, max_chars, encoding)
        elif path.exists():  # a FIFO, a device (a link to /dev/zero), a socket: never read, it may not end
            result.warnings.append(f"{path}: skipped (not a regular file)")
        elif path.is_symlink():
            result.warnings.append(f"{path}: skipped (a link to {os.readlink(path)}, which does not exist)")
        else:
            result.warnings.append(f"{path}: not found")
    # Same content twice (two files, or a repeated record) is one passage.
    unique: dict[str, Passage] = {}
    for p in result.passages:
        unique.setdefault(p.id, p)
    result.passages = list(unique.values())
    return result
