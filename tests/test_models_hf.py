"""`hf:REPO/FILE` models through huggingface_hub, against a fake hub on 127.0.0.1 (HF_ENDPOINT)."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading

import pytest

BLOB = b"GGUF" + bytes(range(256)) * 8
COMMIT = "a" * 40


class FakeHub(http.server.BaseHTTPRequestHandler):
    def _headers(self, found: bool):
        if not found:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        self.send_response(200)
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("ETag", '"' + hashlib.sha256(BLOB).hexdigest() + '"')
        self.send_header("Content-Length", str(len(BLOB)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        return True

    def _found(self) -> bool:
        return self.path.split("?")[0].endswith("/resolve/main/tiny.gguf") and "/org/tiny/" in self.path

    def do_HEAD(self):  # noqa: N802
        self._headers(self._found())

    def do_GET(self):  # noqa: N802
        if self._headers(self._found()):
            self.wfile.write(BLOB)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _path(hub, home, ref):
    env = {"HF_ENDPOINT": hub, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1",
           "PLACECELL_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "placecell.cli", "models", "path", ref], capture_output=True,
                          text=True, env=env, timeout=120)


def test_hf_download_through_local_endpoint(hub, home):
    proc = _path(hub, home, "hf:org/tiny/tiny.gguf")
    assert proc.returncode == 0, proc.stderr
    local = proc.stdout.strip()
    assert local.startswith(str(home)) and open(local, "rb").read() == BLOB


def test_hf_missing_file_is_one_line(hub, home):
    proc = _path(hub, home, "hf:org/tiny/missing.gguf")
    assert proc.returncode == 3
    assert proc.stderr.startswith("error: could not download hf:org/tiny/missing.gguf")
    assert len(proc.stderr.strip().splitlines()) == 1
