"""Loading inputs into passages, and the bad-input warnings."""

from __future__ import annotations

import json

import pytest

from placecell.tools.loaders import chunk_text, load_sources


def _pdf_with_text(text: str) -> bytes:
    """A minimal one-page PDF with a text stream (pypdf can extract it)."""
    content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def test_jsonl_records_are_whole_passages_and_bad_lines_are_reported(tmp_path):
    f = tmp_path / "c.jsonl"
    long_text = "word " * 1000
    f.write_text('{"title": "A", "text": "' + long_text + '"}\nnot json\n{"title": "B"}\n\n{"title": "C", "text": "c"}\n')
    res = load_sources([str(f)])
    assert [p.title for p in res.passages] == ["A", "C"]
    assert res.passages[0].text == "A\n" + long_text.strip()  # never split
    assert res.warnings == [f"{f}: skipped 2 bad JSONL line(s): 2, 3"]


def test_files_folders_and_bad_files(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n\nFirst paragraph.\n\nSecond paragraph.")
    (tmp_path / "docs" / "page.html").write_text(
        "<html><head><title>Page</title></head><body><article><p>" + "Useful text here. " * 20
        + "</p></article></body></html>")
    (tmp_path / "docs" / "doc.pdf").write_bytes(_pdf_with_text("Hello from a PDF file"))
    (tmp_path / "docs" / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "docs" / "empty.txt").write_text("   \n")
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    res = load_sources([str(tmp_path / "docs"), str(tmp_path / "missing.txt"), str(tmp_path / "x.exe")])
    texts = " ".join(p.text for p in res.passages)
    assert "First paragraph." in texts and "Useful text here." in texts and "Hello from a PDF file" in texts
    joined = "\n".join(res.warnings)
    assert "bin.txt: skipped (binary file)" in joined
    assert "empty.txt: skipped (empty)" in joined
    assert "broken.pdf: skipped" in joined
    assert "missing.txt: not found" in joined


def test_file_urls_are_refused():
    res = load_sources(["file:///etc/passwd"])
    assert res.passages == [] and "file: URLs are refused" in res.warnings[0]


def test_chunking_respects_the_limit():
    text = "\n\n".join(["Sentence one. Sentence two is here."] * 50)
    chunks = chunk_text(text, max_chars=200)
    assert all(len(c) <= 200 for c in chunks) and len(chunks) > 5
    assert "".join(chunks).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")


def test_html_files_keep_title_and_body_apart(tmp_path):
    # extract_text returns (title, text); the loader read them the other way round, so a page
    # without <title> was dropped as empty and a titled one became one passage titled by its body
    (tmp_path / "notitle.html").write_text("<html><body><p>Osprey Lake is fed by the Kettle River.</p></body></html>")
    body = "".join(f"<p>Paragraph {i} about the Blue Heron Bridge and the river below it.</p>" for i in range(40))
    (tmp_path / "bridge.html").write_text(f"<html><head><title>Blue Heron Bridge</title></head><body><article>{body}"
                                          "</article></body></html>")
    res = load_sources([str(tmp_path / "notitle.html"), str(tmp_path / "bridge.html")], max_chars=500)
    assert res.warnings == []
    untitled = [p for p in res.passages if p.source.endswith("notitle.html")]
    assert [p.title for p in untitled] == ["notitle"] and "Kettle River" in untitled[0].text
    bridge = [p for p in res.passages if p.source.endswith("bridge.html")]
    assert len(bridge) > 3 and {p.title for p in bridge} == {"Blue Heron Bridge"}


def test_hostile_pdfs_and_jsonl_lines_cost_only_themselves(tmp_path):
    (tmp_path / "nested.pdf").write_bytes(b"%PDF-1.4\n1 0 obj\n" + b"[" * 100_000 + b"\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n")
    (tmp_path / "good.pdf").write_bytes(_pdf_with_text("Hello from a PDF file"))
    lines = [
        '{"title": "A", "text": "first"}',
        '{"title": "Nested", "text": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"title": "B", "text": "bad \\udc80 surrogate"}',
        '{"title": null, "text": "untitled"}',
        '{"title": "N", "text": null}',
        '{"title": "L", "text": ["a", "b"]}',
        '{"title": "F", "text": NaN}',
        '{"title": "C", "text": "last"}',
    ]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "empty.jsonl").write_text("")
    res = load_sources([str(tmp_path / n) for n in ("nested.pdf", "good.pdf", "c.jsonl", "empty.jsonl")])
    assert [p.text for p in res.passages if p.source.startswith(str(tmp_path / "c.jsonl"))] == [
        "A\nfirst", "untitled", "C\nlast"]
    assert any("Hello from a PDF file" in p.text for p in res.passages)
    joined = "\n".join(res.warnings)
    assert "nested.pdf: skipped (unreadable PDF" in joined
    assert "c.jsonl: skipped 5 bad JSONL line(s): 2, 3, 5, 6, 7" in joined
    assert "empty.jsonl: skipped (empty)" in joined


def test_hidden_folders_are_not_documents_and_encodings_are_read(tmp_path):
    (tmp_path / "docs" / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / "docs" / ".venv" / "lib" / "LICENSE.txt").write_text("Permission is hereby granted.")
    (tmp_path / "docs" / ".notes.md").write_text("a private scratch note")
    (tmp_path / "docs" / "bom.txt").write_bytes("\ufeffThe Amberly Hall opened in 1911.".encode("utf-8"))
    (tmp_path / "docs" / "windows.txt").write_bytes("Written in Notepad as UTF-16.".encode("utf-16"))
    res = load_sources([str(tmp_path / "docs")])
    assert sorted(p.text for p in res.passages) == ["bom\nThe Amberly Hall opened in 1911.",
                                                    "windows\nWritten in Notepad as UTF-16."]
    named = load_sources([str(tmp_path / "docs" / ".notes.md")])  # named on purpose: ingested
    assert [p.text for p in named.passages] == [".notes\na private scratch note"]


def test_html_files_are_read_in_the_encoding_they_declare(tmp_path):
    page = '<html><head><meta charset="windows-1252"><title>Caf\u00e9 M\u00fcller</title></head><body><p>{}</p></body></html>'
    body = "The Caf\u00e9 M\u00fcller was a dance piece by Pina Bausch \u2013 first shown in Wuppertal in 1978. " * 3
    (tmp_path / "old.html").write_bytes(page.format(body).encode("cp1252"))
    (tmp_path / "http-equiv.htm").write_bytes(
        b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"></head>'
        + "<body><p>{}</p></body></html>".format(body.replace("\u2013", "-")).encode("latin-1"))
    (tmp_path / "undeclared.html").write_bytes(page.replace(' charset="windows-1252"', "").format(body).encode("cp1252"))
    (tmp_path / "plain.txt").write_bytes('<meta charset="latin-1"> Caf\u00e9'.encode("latin-1"))
    res = load_sources([str(tmp_path / n) for n in ("old.html", "http-equiv.htm", "undeclared.html", "plain.txt")])
    titles = {p.title for p in res.passages}
    assert titles == {"Caf\u00e9 M\u00fcller", "http-equiv"}
    assert all("Caf\u00e9 M\u00fcller was a dance piece" in p.text for p in res.passages)
    assert "Bausch \u2013 first" in next(p.text for p in res.passages if p.title != "http-equiv")
    hint = ": --encoding NAME (cp1252, latin-1, ...) reads it)"
    assert sorted(w.split(": ", 1)[1] for w in res.warnings) == [
        "skipped (not UTF-8 text, and no <meta charset> names another encoding" + hint, "skipped (not UTF-8 text" + hint]


def test_text_files_that_are_not_utf8_are_read_in_the_encoding_the_user_names(tmp_path, capsys):
    from placecell.tools.loaders import check_encoding

    text = ("Caf\u00e9 M\u00fcller is a dance piece by Pina Bausch \u2013 first performed in Wuppertal in 1978. "
            "Its set is a caf\u00e9 full of chairs that the dancers push aside.\n")
    (tmp_path / "win.txt").write_bytes(text.encode("cp1252"))
    (tmp_path / "ok.md").write_text("Plain UTF-8 stays as it is: na\u00efve.\n", encoding="utf-8")
    files = [str(tmp_path / "win.txt"), str(tmp_path / "ok.md")]
    named = load_sources(files, encoding="cp1252")
    assert sorted(p.text for p in named.passages) == ["ok\nPlain UTF-8 stays as it is: na\u00efve.", "win\n" + text.strip()]
    assert named.warnings == []
    # a codec that cannot decode it is a skip that names both, not replacement characters
    (tmp_path / "sjis.txt").write_bytes(b"\x81\x40\x82\xa0")
    ascii_only = load_sources([str(tmp_path / "sjis.txt")], encoding="ascii")
    assert ascii_only.passages == [] and "neither UTF-8 nor ascii text (byte 0)" in ascii_only.warnings[0]
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        check_encoding("klingon")

    from placecell.cli import main

    home = tmp_path / "home"
    for args, code in ((["--encoding", "klingon"], 2), ([], 2), (["--encoding", "windows-1252", "--json"], 0)):
        with pytest.raises(SystemExit) as exit_info:
            main(["ingest", str(tmp_path / "win.txt"), "--no-extract", "--home", str(home), *args])
            raise SystemExit(0)
        assert exit_info.value.code == code
    captured = capsys.readouterr()
    assert "error: unknown encoding 'klingon'" in captured.err and "Traceback" not in captured.err
    assert "win.txt: skipped (not UTF-8 text: --encoding NAME" in captured.err
    assert json.loads(captured.out)["passages"] == 1


def test_a_file_name_that_is_not_utf8_is_skipped_and_named(tmp_path):
    """Such a name reached the passage id as lone surrogates: a traceback from ingest and chat."""
    import os

    folder = tmp_path / "notes"
    folder.mkdir()
    bad = os.path.join(os.fsencode(folder), b"bad\xffname.txt")
    with open(bad, "wb") as f:
        f.write(b"Zed lives in Oslo.\n")
    (folder / "good.txt").write_text("Ada lives in Bergen.\n")
    result = load_sources([str(folder)])
    assert [p.text for p in result.passages] == ["good\nAda lives in Bergen."]  # the title leads the text
    assert any("bad\ufffdname.txt: skipped (its name is not UTF-8" in w for w in result.warnings)
    direct = load_sources([os.fsdecode(bad)])
    assert not direct.passages and "its name is not UTF-8" in direct.warnings[0]


def test_a_file_given_by_a_relative_path_is_cited_by_its_absolute_path(tmp_path, monkeypatch):
    """Citations said "notes.md" (as typed) while `documents` listed the absolute path: an app
    running in another folder could not open the source."""
    (tmp_path / "notes.md").write_text("# Notes\nGary Groth co-founded Fantagraphics Books.\n")
    (tmp_path / "c.jsonl").write_text('{"title": "A", "text": "Alpha text."}\n')
    monkeypatch.chdir(tmp_path)
    res = load_sources(["notes.md", "c.jsonl"])
    assert sorted(p.source for p in res.passages) == [f"{tmp_path / 'c.jsonl'}:1", str(tmp_path / "notes.md")]


def test_a_utf16_note_with_no_ascii_character_is_read(tmp_path):
    """A one-line Japanese note saved as UTF-16 has no space, line break or digit in it."""
    (tmp_path / "ja.txt").write_bytes("日本語のテキストです。".encode("utf-16"))
    res = load_sources([str(tmp_path / "ja.txt")])
    assert [p.text for p in res.passages] == ["ja\n日本語のテキストです。"] and not res.warnings


def test_an_unreadable_pdf_is_one_warning_not_pypdf_log_lines(tmp_path, caplog):
    import logging

    logging.getLogger("pypdf").setLevel(logging.NOTSET)  # as a fresh process has it
    (tmp_path / "fake.pdf").write_text("not a pdf\n")
    res = load_sources([str(tmp_path / "fake.pdf")])
    assert len(res.warnings) == 1 and "unreadable PDF" in res.warnings[0]
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("pypdf")]  # "invalid pdf header", ...


def test_a_special_file_or_a_broken_link_is_named_as_such(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    res = load_sources([str(tmp_path / n) for n in ("pipe.txt", "zero.txt", "gone.txt", "missing.txt")])
    assert res.warnings == [f"{tmp_path / 'pipe.txt'}: skipped (not a regular file)",
                            f"{tmp_path / 'zero.txt'}: skipped (not a regular file)",
                            f"{tmp_path / 'gone.txt'}: skipped (a link to {tmp_path / 'nowhere.txt'}, which does not exist)",
                            f"{tmp_path / 'missing.txt'}: not found"]


def test_a_broken_link_in_a_folder_is_named(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Alpha.\n")
    (tmp_path / "docs" / "b.txt").symlink_to(tmp_path / "moved.txt")
    res = load_sources([str(tmp_path / "docs")])
    assert len(res.passages) == 1 and res.warnings == []  # said, not a failed input: the folder ingest exits 0
    assert res.notices == [f"{tmp_path / 'docs' / 'b.txt'}: skipped (a link to {tmp_path / 'moved.txt'}, which does not exist)"]
