"""A small Hub-compatible HTTP server (stdlib only) for tests that cannot reach huggingface.co.

It answers the endpoints that ``huggingface_hub`` / ``transformers`` / ``datasets`` call for ``push_to_hub``,
``from_pretrained``, ``hf_hub_download`` and ``load_dataset``: repo creation, branches, preupload (``lfs`` for weight
and data files, ``regular`` for the rest), the LFS batch API with basic ``PUT`` transfers (no Xet: clients set
``HF_HUB_DISABLE_XET=1``), NDJSON commits (atomic: all files of a commit or none), repo info, refs, tree listing,
paths-info, and ``HEAD``/``GET`` of ``resolve`` URLs with the ``X-Error-Code`` headers the client maps to its
exceptions.

Storage is in memory. Every token is accepted and owns every repo; a private repo needs *some* token.
``HubState.fail_commits`` (or ``POST /_testing/fail-commits/{org}/{name}`` with ``{"times": n}``) makes the next
``n`` commits to a repo fail after their body was read (a push that dies half-way), for testing that nothing
partial is ever published.

Run it by hand with ``python tests/hub/hub_server.py [port]`` and ``export HF_ENDPOINT=http://127.0.0.1:port``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

_LFS_SUFFIXES = (".safetensors", ".parquet", ".arrow", ".bin")
_GITATTRIBUTES = b"".join(b"*%s filter=lfs diff=lfs merge=lfs -text\n" % s.encode() for s in _LFS_SUFFIXES)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> snapshot {path: content}
    refs: dict[str, str] = field(default_factory=dict)  # branch -> sha

    def commit(self, parent: str | None, files: dict[str, bytes], message: str) -> str:
        sha = hashlib.sha1(f"{parent}{message}{time.time_ns()}{sorted(files)}".encode()).hexdigest()
        self.commits[sha] = files
        return sha

    def resolve(self, revision: str) -> str | None:
        """Commit sha of a branch name or a (full) commit sha."""
        return self.refs.get(revision) or (revision if revision in self.commits else None)


@dataclass
class HubState:
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content uploaded through the LFS batch API
    fail_commits: dict[str, int] = field(default_factory=dict)  # repo_id -> number of commits still to fail
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Error(Exception):
    def __init__(self, status: int, code: str | None, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _entry(path: str, content: bytes) -> dict:
    return {"type": "file", "path": path, "size": len(content), "oid": _oid(content)}


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: HubState  # set on the subclass built by `serve`
    endpoint: str

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    # ------------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self.state.lock:
            self.state.requests.append((method, url.path))
        try:
            if parts[:1] == ["_testing"]:  # fault injection: POST /_testing/fail-commits/{org}/{name} {"times": n}
                times = int(json.loads(self._body() or b"{}").get("times", 1))
                with self.state.lock:
                    self.state.fail_commits["/".join(parts[2:])] = times
                return self._json(200, {"failing": "/".join(parts[2:]), "times": times})
            if parts[:1] == ["_lfs"] and method == "PUT":
                return self._lfs_put(parts[1])
            if parts[-3:] == ["lfs", "objects", "batch"]:
                return self._lfs_batch(json.loads(self._body()))
            if parts[:1] == ["api"]:
                self._api(method, parts[1:], query)
            elif "resolve" in parts:
                self._resolve(method, parts)
            else:
                raise _Error(404, None, f"no route for {method} {url.path}")
        except _Error as e:
            headers = {"X-Error-Code": e.code} if e.code else {}
            headers["X-Error-Message"] = e.message
            if method == "HEAD":
                self._send(e.status, b"", headers, head=True)
            else:
                self._json(e.status, {"error": e.message}, headers)

    do_GET = lambda self: self._dispatch("GET")  # noqa: E731
    do_POST = lambda self: self._dispatch("POST")  # noqa: E731
    do_HEAD = lambda self: self._dispatch("HEAD")  # noqa: E731
    do_PUT = lambda self: self._dispatch("PUT")  # noqa: E731

    # ------------------------------------------------------------------ LFS basic transfer (clients disable Xet)
    def _lfs_batch(self, payload: dict) -> None:
        objects = []
        for obj in payload.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.state.lfs:
                entry["actions"] = {"upload": {"href": f"{self.endpoint}/_lfs/{obj['oid']}", "header": {}}}
            objects.append(entry)
        self._json(200, {"transfer": "basic", "objects": objects})

    def _lfs_put(self, oid: str) -> None:
        content = self._body()
        if hashlib.sha256(content).hexdigest() != oid:
            raise _Error(400, None, f"LFS upload does not match its oid {oid}")
        with self.state.lock:
            self.state.lfs[oid] = content
        self._send(200)

    # ------------------------------------------------------------------ repos
    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.state.repos.get((repo_type, repo_id))
        authorized = self.headers.get("Authorization", "").startswith("Bearer ")
        if repo is None or (repo.private and not authorized):
            raise _Error(404 if repo is None else 401, "RepoNotFound", f"Repository {repo_id} not found")
        return repo

    def _snapshot(self, repo: Repo, revision: str) -> tuple[str, dict[str, bytes]]:
        sha = repo.resolve(revision)
        if sha is None:
            raise _Error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return sha, repo.commits[sha]

    def _url(self, repo: Repo) -> str:
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return f"{self.endpoint}/{prefix}{repo.repo_id}"

    def _api(self, method: str, parts: list[str], query: dict) -> None:
        if parts == ["repos", "create"]:
            return self._create_repo(json.loads(self._body() or b"{}"))
        if parts == ["validate-yaml"]:
            self._body()
            return self._json(200, {"errors": [], "warnings": []})
        if not parts or parts[0] not in ("models", "datasets", "spaces") or len(parts) < 3:
            raise _Error(404, None, f"unknown API route /api/{'/'.join(parts)}")
        repo = self._repo(parts[0][:-1], f"{parts[1]}/{parts[2]}")
        action, rest = (parts[3] if len(parts) > 3 else "revision"), parts[4:]
        revision = rest[0] if rest else "main"
        if action == "preupload" and method == "POST":
            files = json.loads(self._body())["files"]
            entries = [
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if f["path"].endswith(_LFS_SUFFIXES) else "regular",
                    "shouldIgnore": False,
                }
                for f in files
            ]
            return self._json(200, {"files": entries, "commitOid": repo.resolve(revision)})
        if action == "commit" and method == "POST":
            return self._commit(repo, revision, self._body(), query)
        if action == "branch" and method == "POST":
            return self._create_branch(repo, revision, json.loads(self._body() or b"{}"))
        if action == "refs":
            branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s} for b, s in repo.refs.items()]
            return self._json(200, {"branches": branches, "tags": [], "converts": []})
        sha, files = self._snapshot(repo, revision)
        if action == "revision":
            return self._json(200, self._info(repo, sha, files))
        if action == "tree":
            prefix = "/".join(rest[1:])
            if prefix and not any(p.startswith(prefix.rstrip("/") + "/") for p in files):
                raise _Error(404, "EntryNotFound", f"{prefix} does not exist on {revision}")
            return self._json(200, self._tree(files, prefix, query.get("recursive") in ("1", "true", "True")))
        if action == "paths-info" and method == "POST":
            raw = self._body()
            body = json.loads(raw) if raw.startswith(b"{") else {"paths": parse_qs(raw.decode()).get("paths", [])}
            return self._json(200, self._paths_info(files, body.get("paths", [])))
        raise _Error(404, None, f"unknown API route /api/{'/'.join(parts)}")

    def _create_repo(self, payload: dict) -> None:
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
        key = (repo_type, repo_id)
        with self.state.lock:
            exists = key in self.state.repos
            if not exists:
                repo = Repo(repo_type, repo_id, private=payload.get("visibility") == "private")
                repo.refs["main"] = repo.commit(None, {".gitattributes": _GITATTRIBUTES}, "initial commit")
                self.state.repos[key] = repo
        url = self._url(self.state.repos[key])
        if exists:
            return self._json(409, {"error": "You already created this repo", "url": url})
        self._json(200, {"url": url, "name": repo_id})

    def _create_branch(self, repo: Repo, branch: str, payload: dict) -> None:
        if branch in repo.refs:
            raise _Error(409, None, f"Reference already exists: refs/heads/{branch}")
        sha, _ = self._snapshot(repo, payload.get("startingPoint") or "main")
        repo.refs[branch] = sha
        self._json(200, {})

    def _commit(self, repo: Repo, branch: str, body: bytes, query: dict) -> None:
        if query.get("create_pr"):
            raise _Error(400, None, "this test server does not support pull requests")
        if branch not in repo.refs:
            raise _Error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        with self.state.lock:
            if self.state.fail_commits.get(repo.repo_id, 0) > 0:
                self.state.fail_commits[repo.repo_id] -= 1
                raise _Error(500, None, "Internal Error - the commit was interrupted (test fault injection)")
            header = lines[0]["value"]
            parent = repo.refs[branch]
            if header.get("parentCommit") not in (None, parent):
                raise _Error(412, None, "A commit has happened since. Please refresh and try again.")
            files = dict(repo.commits[parent])
            for op in lines[1:]:
                key, value = op["key"], op["value"]
                if key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "lfsFile":
                    if value["oid"] not in self.state.lfs:
                        raise _Error(400, None, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    files[value["path"]] = self.state.lfs[value["oid"]]
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    files = {p: c for p, c in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
                else:
                    raise _Error(400, None, f"unsupported commit operation {key!r}")
            sha = repo.commit(parent, files, header.get("summary", ""))
            repo.refs[branch] = sha
        self._json(200, {"commitUrl": f"{self._url(repo)}/commit/{sha}", "commitOid": sha, "success": True})

    def _info(self, repo: Repo, sha: str, files: dict[str, bytes]) -> dict:
        return {
            "id": repo.repo_id,
            "_id": repo.repo_id,
            "modelId": repo.repo_id,
            "sha": sha,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p, "size": len(c)} for p, c in sorted(files.items())],
        }

    @staticmethod
    def _tree(files: dict[str, bytes], prefix: str, recursive: bool) -> list[dict]:
        base = prefix.rstrip("/") + "/" if prefix else ""
        out, dirs = [], set()
        for path, content in sorted(files.items()):
            if not path.startswith(base):
                continue
            rel = path[len(base) :].split("/")
            for depth in range(1, len(rel) if recursive else min(2, len(rel))):
                dirs.add(base + "/".join(rel[:depth]))
            if recursive or len(rel) == 1:
                out.append(_entry(path, content))
        return [{"type": "directory", "path": d, "oid": _oid(d.encode()), "size": 0} for d in sorted(dirs)] + out

    @staticmethod
    def _paths_info(files: dict[str, bytes], paths: list[str]) -> list[dict]:
        out = []
        for p in paths:
            if p in files:
                out.append(_entry(p, files[p]))
            elif any(f.startswith(p.rstrip("/") + "/") for f in files):
                out.append({"type": "directory", "path": p, "oid": _oid(p.encode()), "size": 0})
        return out

    # ------------------------------------------------------------------ file downloads
    def _resolve(self, method: str, parts: list[str]) -> None:
        i = parts.index("resolve")
        repo_type = "model"
        if parts[0] in ("datasets", "spaces"):
            repo_type, parts, i = parts[0][:-1], parts[1:], i - 1
        repo = self._repo(repo_type, "/".join(parts[:i]))
        sha, files = self._snapshot(repo, parts[i + 1])
        path = "/".join(parts[i + 2 :])
        if path not in files:
            raise _Error(404, "EntryNotFound", f"Entry not found: {path}")
        content = files[path]
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{hashlib.sha256(content).hexdigest()}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and method == "GET":
            start, _, end = rng[6:].partition("-")
            content = content[int(start or 0) : int(end) + 1 if end else None]
            return self._send(206, content, headers)
        self._send(200, content, headers, head=method == "HEAD")


def serve(port: int = 0) -> tuple[ThreadingHTTPServer, HubState]:
    """Start the server on ``127.0.0.1:port`` (0: a free port) in a daemon thread; returns ``(server, state)``."""
    state = HubState()
    handler = type("BoundHubHandler", (HubHandler,), {"state": state, "endpoint": ""})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    handler.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    srv, _ = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"export HF_ENDPOINT=http://127.0.0.1:{srv.server_address[1]}", flush=True)
    threading.Event().wait()
