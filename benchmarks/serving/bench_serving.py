"""Load test of ``hf-recsys serve`` on 127.0.0.1: p50 / p99 latency and throughput at 1, 8 and 64 clients.

Two models on a synthetic log with ``--items`` items (10,000 by default): EASE (fitted) and a causal sequential
model (hidden 64, 2 layers, history length 50, trained ``--seq-epochs`` epochs: its weights matter little for
latency). Each is saved, served by the real CLI in a subprocess (``hf-recsys serve``), and hit by an httpx
asyncio loop: every request ``POST /recommend {"users": [one random user], "k": 10}``; each level runs until
``--requests`` answers or ``--seconds`` seconds, whichever comes first. The client runs on the same machine (it
takes CPU from the server: the numbers are conservative); ``--client-procs N`` spreads the clients of a level over
N processes (one httpx client holding 64 connections is slow by itself).

Usage: ``nice -n 15 python benchmarks/serving/bench_serving.py --out benchmarks/serving/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "retrieval"))
from bench_retrieval import machine  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_models(folder: Path, items: int, seq_epochs: int, models: list[str]) -> dict[str, tuple[Path, list]]:
    import torch

    from hf_recsys import AutoModelForRecommendation
    from hf_recsys.data import generate_interactions
    from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender

    torch.set_num_threads(2)
    log, _ = generate_interactions(num_users=5000, num_items=items, num_interactions=150_000, seed=0)
    users = sorted(set(log["user_id"]))
    out = {}
    t0 = time.perf_counter()
    ease = AutoModelForRecommendation.for_model("ease", l2=200.0).fit(log)
    print(f"EASE fitted on {len(log)} interactions, {ease.config.num_items} items in {time.perf_counter() - t0:.0f} s")
    ease.save_pretrained(folder / "ease")
    out["ease"] = (folder / "ease", users)
    if "causal_sequential" not in models:
        return {k: v for k, v in out.items() if k in models}
    cfg = CausalSequentialConfig(hidden_size=64, num_layers=2, num_heads=2, max_sequence_length=50)
    t0 = time.perf_counter()
    seq = CausalSequentialRecommender(cfg).fit(log, epochs=seq_epochs, show_progress=False)
    print(f"causal_sequential trained {seq_epochs} epoch(s) in {time.perf_counter() - t0:.0f} s")
    seq.save_pretrained(folder / "causal_sequential")
    out["causal_sequential"] = (folder / "causal_sequential", users)
    return {k: v for k, v in out.items() if k in models}


def start_server(path: Path, port: int, threads: int, extra: list[str] | None = None) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "hf_recsys.cli", "serve", str(path), "--port", str(port)]
    cmd += extra or []
    proc = subprocess.Popen(cmd + ["--max-wait-ms", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode()[-3000:])
    proc.kill()
    raise RuntimeError("server did not start")


def load_in_processes(
    url: str, users: list, clients: int, procs: int, max_requests: int, max_seconds: float, client: str = "httpx"
) -> dict:
    """``clients`` concurrent clients spread over ``procs`` client processes (one httpx client with many
    connections is itself slow), latencies merged."""
    import multiprocessing as mp

    procs = max(1, min(procs, clients))
    per = [clients // procs + (i < clients % procs) for i in range(procs)]
    jobs = [(url, users, c, max_requests // procs, max_seconds, i, client) for i, c in enumerate(per)]
    with mp.get_context("spawn").Pool(procs) as pool:
        parts = pool.starmap(_load_part, jobs)
    lat = np.concatenate([np.asarray(p["latencies"]) for p in parts]) * 1000
    wall = max(p["seconds"] for p in parts)
    return {
        "clients": clients,
        "client_processes": procs,
        "requests": len(lat),
        "errors": sum(p["errors"] for p in parts),
        "seconds": round(wall, 2),
        "throughput_rps": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "max_ms": round(float(lat.max()), 2),
    }


def _load_part(*args) -> dict:
    return asyncio.run(LOADERS[args[-1]](*args[:-1], raw=True))


async def load_raw(
    url: str, users: list, clients: int, max_requests: int, max_seconds: float, seed: int = 0, raw: bool = False
) -> dict:
    """The same load as :func:`load` from a minimal HTTP/1.1 keep-alive client on asyncio streams: request bytes
    prepared in advance, the answer read by its Content-Length and checked (status 200, k items). It costs a
    fraction of httpx's CPU per request, so less of the shared cores go to the load generator."""
    host, port = url.split("//")[1].split(":")
    rng = np.random.default_rng(seed)
    bodies = [json.dumps({"users": [u], "k": 10}).encode() for u in users]
    head = f"POST /recommend HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: "
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + max_seconds
    issued = 0

    async def call(reader, writer, body: bytes) -> tuple[int, bytes]:
        writer.write(head.encode() + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(status_line.split()[1]), await reader.readexactly(length)

    async def worker():
        nonlocal issued, errors
        reader, writer = await asyncio.open_connection(host, int(port))
        await call(reader, writer, bodies[0])  # warm-up, not measured
        while issued < max_requests and time.perf_counter() < stop:
            issued += 1
            body = bodies[int(rng.integers(len(bodies)))]
            t0 = time.perf_counter()
            status, answer = await call(reader, writer, body)
            latencies.append(time.perf_counter() - t0)
            if status != 200 or len(json.loads(answer)["recommendations"][0]["items"]) != 10:
                errors += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - t0
    if raw:
        return {"latencies": latencies, "errors": errors, "seconds": wall}
    return summary(latencies, errors, wall, clients)


def summary(latencies: list[float], errors: int, wall: float, clients: int) -> dict:
    lat = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(lat),
        "errors": errors,
        "seconds": round(wall, 2),
        "throughput_rps": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "max_ms": round(float(lat.max()), 2),
    }


async def load(
    url: str, users: list, clients: int, max_requests: int, max_seconds: float, seed: int = 0, raw: bool = False
) -> dict:
    import httpx

    rng = np.random.default_rng(seed)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + max_seconds
    issued = 0

    async def worker(client):
        nonlocal issued, errors
        while issued < max_requests and time.perf_counter() < stop:
            issued += 1
            user = users[int(rng.integers(len(users)))]
            t0 = time.perf_counter()
            r = await client.post("/recommend", json={"users": [user], "k": 10})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200 or len(r.json()["recommendations"][0]["items"]) != 10:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for _ in range(min(20, max_requests)):  # warm-up, not measured
            await client.post("/recommend", json={"users": [users[0]], "k": 10})
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        wall = time.perf_counter() - t0
    if raw:
        return {"latencies": latencies, "errors": errors, "seconds": wall}
    return summary(latencies, errors, wall, clients)


LOADERS = {"httpx": load, "raw": load_raw}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=10_000)
    p.add_argument("--seq-epochs", type=int, default=1)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--requests", type=int, default=2000, help="most requests per level")
    p.add_argument("--seconds", type=float, default=30.0, help="most seconds per level")
    p.add_argument("--server-threads", type=int, default=1)
    p.add_argument("--client-procs", type=int, default=1, help="client processes sharing the concurrent clients")
    p.add_argument("--client", choices=sorted(LOADERS), default="httpx", help="load generator (raw: minimal HTTP/1.1)")
    p.add_argument("--server-args", default="", help="more hf-recsys serve options, e.g. '--no-fast-path'")
    p.add_argument("--models", nargs="+", default=["ease", "causal_sequential"])
    p.add_argument("--pause-for-profiler", type=float, default=0, help="seconds to wait after printing the server pid")
    p.add_argument("--out")
    args = p.parse_args()
    result = {"machine": machine(), "args": vars(args), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, users) in build_models(Path(tmp), args.items, args.seq_epochs, args.models).items():
            port = free_port()
            proc = start_server(path, port, args.server_threads, args.server_args.split())
            result.setdefault("server_pids", {})[name] = proc.pid
            if args.pause_for_profiler:
                print(f"server pid {proc.pid}", flush=True)
                time.sleep(args.pause_for_profiler)
            try:
                rows = []
                url = f"http://127.0.0.1:{port}"
                for c in args.clients:
                    if args.client_procs > 1 and c > 1:
                        row = load_in_processes(
                            url, users, c, args.client_procs, args.requests, args.seconds, args.client
                        )
                    else:
                        row = asyncio.run(LOADERS[args.client](url, users, c, args.requests, args.seconds))
                    print(name, json.dumps(row), flush=True)
                    rows.append(row)
                result["models"][name] = rows
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
