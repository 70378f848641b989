"""A tiny local stand-in for the Hugging Face Hub, speaking just enough of its wire protocol for
huggingface_hub's model_info / list_repo_tree / hf_hub_download, so that download tests run the
real client against a real HTTP server on 127.0.0.1 (no mocks). Fault injection (dropped
connections, wrong bytes, failing GETs, gated repos, huge declared sizes) is set per file.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file, which the hub uses as the ETag of non-LFS files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    """One model repo at one commit. `files` maps repo paths to their bytes."""

    repo_id: str
    files: dict[str, bytes]
    refs: dict[str, str] = field(default_factory=dict)  # extra branch/tag names -> commit (default: main only)
    gated_token: str | None = None  # if set, file downloads need `Authorization: Bearer <token>`
    corrupt: set[str] = field(default_factory=set)  # serve wrong bytes (same length, right metadata)
    drop_once: set[str] = field(default_factory=set)  # first full GET dies half-way through the body
    fail_get: dict[str, int] = field(default_factory=dict)  # GET answers this status code
    declared_size: dict[str, int] = field(default_factory=dict)  # size announced in listings

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.repo_id.encode())
        for path in sorted(self.files):
            digest.update(path.encode() + hashlib.sha256(self.files[path]).digest())
        self.commit = digest.hexdigest()
        self.refs = {"main": self.commit, **{name: self.commit for name in self.refs}}

    def is_lfs(self, path: str) -> bool:
        return path.endswith(LFS_SUFFIXES)

    def etag(self, path: str) -> str:
        data = self.files[path]
        return hashlib.sha256(data).hexdigest() if self.is_lfs(path) else git_blob_sha1(data)

    def entry(self, path: str) -> dict:
        """A file as the tree API lists it (`oid` is the git blob id, `lfs.oid` the sha256)."""
        data = self.files[path]
        size = self.declared_size.get(path, len(data))
        item = {"type": "file", "path": path, "size": size, "oid": git_blob_sha1(data)}
        if self.is_lfs(path):
            item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": size, "pointerSize": 134}
        return item

    def sibling(self, path: str) -> dict:
        """A file as model_info(files_metadata=True) lists it."""
        item = self.entry(path)
        sib = {"rfilename": path, "size": item["size"], "blobId": item["oid"]}
        if "lfs" in item:
            sib["lfs"] = {"sha256": item["lfs"]["oid"], "size": item["size"], "pointerSize": 134}
        return sib

    def body(self, path: str) -> bytes:
        data = self.files[path]
        return bytes(b ^ 0xFF for b in data) if path in self.corrupt else data


class HubServer:
    """Serve FakeRepos on an ephemeral port; `url` is what HF_ENDPOINT should be set to."""

    def __init__(self, repos: list[FakeRepo] | None = None, not_a_hub: bool = False) -> None:
        self.repos: dict[str, FakeRepo] = {r.repo_id: r for r in repos or []}
        self.not_a_hub = not_a_hub  # a plain 404 (no hub error code) for every request: a wrong mirror URL
        self.log: list[dict] = []  # one dict per request: method, path, range, auth
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, repo: FakeRepo) -> FakeRepo:
        self.repos[repo.repo_id] = repo
        return repo

    def gets(self, suffix: str = "") -> list[dict]:
        """GET requests for files (resolve URLs) whose path ends with `suffix`."""
        return [e for e in self.log if e["method"] == "GET" and "/resolve/" in e["path"] and e["path"].endswith(suffix)]

    def __enter__(self) -> HubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _make_handler(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_HEAD(self) -> None:
            self._route(head=True)

        def do_GET(self) -> None:
            self._route(head=False)

        # ------------------------------------------------------------------ helpers
        def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _json(self, payload: object, head: bool = False) -> None:
            self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, head)

        def _error(self, status: int, code: str | None, message: str, head: bool, extra: dict | None = None) -> None:
            headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, json.dumps({"error": message}).encode(), headers, head)

        # ------------------------------------------------------------------ routing
        def _route(self, head: bool) -> None:
            split = urlsplit(self.path)
            with server._lock:
                server.log.append(
                    {
                        "method": self.command,
                        "path": unquote(split.path),
                        "range": self.headers.get("Range"),
                        "auth": self.headers.get("Authorization"),
                    }
                )
            if server.not_a_hub:
                return self._send(404, b"<h1>Not Found</h1>", {"Content-Type": "text/html"}, head)
            parts = split.path.strip("/").split("/")
            query = parse_qs(split.query)
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo = server.repos.get(f"{unquote(parts[2])}/{unquote(parts[3])}")
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found", head)
                rest = parts[4:]
                if not rest:
                    return self._model_info(repo, "main", query, head)
                if rest[0] == "revision" and len(rest) == 2:
                    return self._model_info(repo, unquote(rest[1]), query, head)
                if rest[0] == "tree" and len(rest) >= 2:
                    folder = unquote("/".join(rest[2:])) if len(rest) > 2 else ""
                    return self._tree(repo, unquote(rest[1]), folder, query, head)
                return self._error(404, None, "Not found", head)
            if len(parts) >= 5 and parts[2] == "resolve":
                repo = server.repos.get(f"{unquote(parts[0])}/{unquote(parts[1])}")
                if repo is None:
                    return self._error(404, "RepoNotFound", "Repository not found", head)
                return self._resolve(repo, unquote(parts[3]), unquote("/".join(parts[4:])), head)
            self._error(404, None, "Not found", head)

        def _commit(self, repo: FakeRepo, revision: str, head: bool) -> str | None:
            commit = repo.refs.get(revision) or (revision if revision == repo.commit else None)
            if commit is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return commit

        def _model_info(self, repo: FakeRepo, revision: str, query: dict, head: bool) -> None:
            commit = self._commit(repo, revision, head)
            if commit is None:
                return
            blobs = query.get("blobs", ["false"])[0].lower() == "true"
            siblings = [repo.sibling(p) if blobs else {"rfilename": p} for p in sorted(repo.files)]
            gated = "manual" if repo.gated_token else False
            payload = {"id": repo.repo_id, "sha": commit, "private": False, "gated": gated, "siblings": siblings}
            self._json(payload, head)

        def _tree(self, repo: FakeRepo, revision: str, folder: str, query: dict, head: bool) -> None:
            if self._commit(repo, revision, head) is None:
                return
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            prefix = f"{folder}/" if folder else ""
            if folder and not any(p.startswith(prefix) for p in repo.files):
                return self._error(404, "EntryNotFound", f"{folder} does not exist", head)
            items, dirs = [], set()
            for path in sorted(repo.files):
                if not path.startswith(prefix):
                    continue
                rest = path[len(prefix) :].split("/")
                if len(rest) > 1 and not recursive:
                    dirs.add(prefix + rest[0])
                    continue
                for i in range(1, len(rest)):  # recursive listings also name the folders
                    dirs.add(prefix + "/".join(rest[:i]))
                items.append(repo.entry(path))
            folders = [{"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest()} for d in dirs]
            self._json(sorted(folders, key=lambda d: d["path"]) + items, head)

        def _resolve(self, repo: FakeRepo, revision: str, path: str, head: bool) -> None:
            commit = self._commit(repo, revision, head)
            if commit is None:
                return
            if repo.gated_token is not None:
                auth = self.headers.get("Authorization")
                if auth is None:
                    return self._error(401, "GatedRepo", "Access to this model is restricted. Log in.", head)
                if auth != f"Bearer {repo.gated_token}":
                    return self._error(403, "GatedRepo", "You are not in the authorized list.", head)
            if path not in repo.files:
                return self._error(404, "EntryNotFound", "Entry not found", head, {"X-Repo-Commit": commit})
            if not head and path in repo.fail_get:
                return self._error(repo.fail_get[path], None, "Internal error", head)
            body = repo.body(path)
            headers = {"X-Repo-Commit": commit, "ETag": f'"{repo.etag(path)}"', "Accept-Ranges": "bytes"}
            if repo.is_lfs(path):
                headers["X-Linked-Etag"] = f'"{repo.etag(path)}"'
                headers["X-Linked-Size"] = len(body)
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                first, _, last = rng[len("bytes=") :].partition("-")
                start = int(first or 0)
                end = int(last) if last else len(body) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
                part = body[start : end + 1]
                status = 206
            else:
                part, status = body, 200
            if head:
                return self._head(headers, len(body))
            if path in repo.drop_once and start == 0:
                repo.drop_once.discard(path)
                return self._drop(status, headers, part)
            self._send(status, part, headers)

        def _head(self, headers: dict, size: int) -> None:
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.send_header("Content-Length", str(size))
            self.end_headers()

        def _drop(self, status: int, headers: dict, body: bytes) -> None:
            """Announce the full body, send half of it, then cut the TCP connection."""
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    return Handler
