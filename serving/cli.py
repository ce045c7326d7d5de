"""``promote-best``: the best trial of an experiment -> an immutable model version -> a KServe endpoint.

promote-best quickstart --to ./models/roberta-yahoo                     # embedded default, no server
promote-best quickstart --to ./models/roberta-yahoo --serve --predict "Who won the cup final?"
promote-best quickstart --to s3://models/roberta-yahoo --deploy --namespace kubeflow-user
promote-best quickstart --to s3://models/roberta-yahoo --deploy --dry-run     # print the YAML only
promote-best --rollback roberta-yahoo --namespace kubeflow-user
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from experiments._env import STORAGE_ENV
from experiments.errors import KatibSuiteError, UsageError
from serving.promote_errors import PromoteError
from trainer.errors import TrainerError

DEFAULT_NAMESPACE = "kubeflow-user"  # infra/names.env KATIB_SUITE_NAMESPACE
EXAMPLES = """examples:
  promote-best quickstart --to ./models/roberta-yahoo
  promote-best quickstart --to ./models/roberta-yahoo --serve --http-port 8080
  promote-best quickstart --to s3://models/roberta-yahoo --trial quickstart-abc12345 --output json
  promote-best quickstart --to s3://models/roberta-yahoo --deploy --dry-run
  promote-best quickstart --to s3://models/roberta-yahoo --deploy --deployment-mode Serverless --canary 10
  promote-best --rollback roberta-yahoo --namespace kubeflow-user

S3: boto3's usual settings (AWS_ENDPOINT_URL for MinIO, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promote-best",
        description="Promote an experiment's best trial (Katib's choice) to a verified, immutable model "
        "version DEST/v<N>/ with a model card; optionally deploy it as a KServe InferenceService or serve "
        "it here.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("experiment", nargs="?", help="the experiment's name")
    parser.add_argument("--to", dest="dest", metavar="DEST", help="s3://bucket/models/NAME or a local folder")
    parser.add_argument("--trial", help="promote this trial instead of the best one")
    parser.add_argument("--backend", default="local", help="where the experiment ran (default: local)")
    parser.add_argument(
        "--storage", metavar="URL", help=f"the local backend's storage (default: ${STORAGE_ENV})"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="select and verify, print the plan; write nothing"
    )
    parser.add_argument("--output", choices=("text", "json"), default="text")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--deploy", action="store_true", help="create or patch a KServe InferenceService")
    mode.add_argument("--serve", action="store_true", help="serve the version here (KServe ModelServer)")
    mode.add_argument(
        "--rollback", metavar="NAME", help="point InferenceService NAME back at its previous version"
    )
    parser.add_argument(
        "--predict", metavar="TEXT", action="append", help="send TEXT to the endpoint (repeatable)"
    )

    k8s = parser.add_argument_group("deploy (KServe)")
    k8s.add_argument("--name", help="InferenceService / model name (default: DEST's last part)")
    k8s.add_argument(
        "--namespace",
        help=f"a Kubeflow profile namespace to deploy into (default: {DEFAULT_NAMESPACE}, as infra/ makes it); "
        "with --backend cluster also where the experiment is (default: where this folder submitted it, else "
        "the context's namespace)",
    )
    k8s.add_argument("--service-account", default="aws-sa", help="ServiceAccount carrying S3 access")
    k8s.add_argument(
        "--deployment-mode", default="RawDeployment", help="RawDeployment | Serverless | Standard"
    )
    k8s.add_argument("--protocol", default="v2", help="v1 | v2 (Open Inference)")
    k8s.add_argument(
        "--no-istio-sidecar", action="store_true", help='annotate sidecar.istio.io/inject: "false"'
    )
    k8s.add_argument("--cpu", default="1")
    k8s.add_argument("--memory", default="2Gi")
    k8s.add_argument("--gpus", type=int, default=0)
    k8s.add_argument("--min-replicas", type=int, default=1)
    k8s.add_argument("--max-replicas", type=int, default=1)
    k8s.add_argument("--logger-url", help="send requests/responses to this URL (spec.predictor.logger)")
    k8s.add_argument("--logger-mode", default="all", help="all | request | response")
    k8s.add_argument("--canary", type=int, metavar="PCT", help="canaryTrafficPercent (Serverless mode only)")
    k8s.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for Ready")
    k8s.add_argument("--kubeconfig", help="kube config file (default: $KUBECONFIG or ~/.kube/config)")
    k8s.add_argument("--context", help="kube context")

    local = parser.add_argument_group("serve (local)")
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--http-port", type=int, default=8080)
    return parser


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.rollback:
        if args.experiment or args.dest:
            raise UsageError("--rollback NAME takes no EXPERIMENT or --to; run it on its own")
        return
    if not args.experiment or not args.dest:
        raise UsageError("promote-best needs EXPERIMENT and --to DEST (s3://bucket/models/NAME or a folder)")
    if args.canary is not None and not args.deploy:
        raise UsageError("--canary goes with --deploy")
    if args.predict and args.dry_run:
        raise UsageError("--predict needs a running endpoint; drop --dry-run")
    if args.predict and not (args.serve or args.deploy):
        raise UsageError(
            "--predict sends TEXT to the model it serves: add --serve (here) or --deploy (KServe)"
        )


def _deploy_options(args: argparse.Namespace, name: str) -> Any:
    from serving.deploy import DeployOptions

    return DeployOptions(
        name=name, namespace=args.namespace, service_account=args.service_account,
        deployment_mode=args.deployment_mode, protocol=args.protocol, istio_sidecar=not args.no_istio_sidecar,
        cpu=args.cpu, memory=args.memory, gpus=args.gpus, min_replicas=args.min_replicas,
        max_replicas=args.max_replicas, logger_url=args.logger_url, logger_mode=args.logger_mode,
        canary=args.canary, timeout=args.timeout,
    )  # fmt: skip


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if args.output == "json":
        print(json.dumps(payload, indent=2, default=str))
    else:
        print("\n".join(lines))


def _promotion_lines(result: Any) -> list[str]:
    sel = result.selection
    lines = [f"trial: {sel.trial.name} — {sel.reason}", f"source: {sel.checkpoint}"]
    if result.dry_run and not result.created and result.card is None:
        lines.append(f"dry run: would promote to {result.version} at {result.uri}; nothing written")
    elif result.created:
        lines.append(f"promoted: {result.version} at {result.uri} (LATEST: {result.latest})")
    else:
        lines.append(f"already promoted: {result.version} at {result.uri} holds this trial; nothing copied")
    note = ((result.card or {}).get("objective") or {}).get("note")
    if note:
        lines.append(f"note: {note}")
    if result.incomplete:
        lines.append(
            f"incomplete versions (failed promotions, no model-card.json): {', '.join(result.incomplete)}; "
            "never served, safe to delete"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    if args.rollback:
        args.namespace = args.namespace or DEFAULT_NAMESPACE
        return _rollback(args)
    from serving.promote import promote

    cluster = {"namespace": args.namespace, "context": args.context, "kubeconfig": args.kubeconfig}
    result = promote(
        args.experiment, args.dest, trial=args.trial, backend=args.backend, storage=args.storage,
        dry_run=args.dry_run, **(cluster if args.backend == "cluster" else {}),
    )  # fmt: skip
    args.namespace = args.namespace or DEFAULT_NAMESPACE
    payload, lines = result.to_json(), _promotion_lines(result)
    name = args.name or result.model_name
    if args.deploy:
        return _deploy(args, result, name, payload, lines)
    if args.serve and args.predict:
        return _serve_and_predict(args, result, name, payload, lines)
    _emit(args, payload, lines)
    if args.serve and not args.dry_run:
        return _serve(args, result, name)
    return 0


def _deploy(args: argparse.Namespace, result: Any, name: str, payload: dict, lines: list[str]) -> int:
    from serving.deploy import Deployer, build_inference_service, curl_line, to_dict, to_yaml, url_of

    options = _deploy_options(args, name)
    isvc = build_inference_service(result.uri, options, result.version)
    if args.dry_run:
        payload["inference_service"] = to_dict(isvc)
        _emit(args, payload, [*lines, "---", to_yaml(isvc).rstrip()])
        return 0
    deployed = Deployer.connect(args.kubeconfig, args.context).apply(isvc, options)
    url = url_of(deployed) or f"http://{name}.{args.namespace}.svc.cluster.local"
    payload["inference_service"] = {"name": name, "namespace": args.namespace, "url": url, "ready": True}
    lines += [
        f"deployed: InferenceService {args.namespace}/{name} is Ready at {url}",
        curl_line(url, name, args.protocol),
    ]
    if args.predict:
        payload["predictions"] = _predict(url, name, args.predict, result.card)
        lines += _prediction_lines(payload["predictions"])
    _emit(args, payload, lines)
    return 0


def _prediction_lines(predictions: list[dict[str, Any]]) -> list[str]:
    return [f"predict: {row['label'] or row['index']}  <- {row['text']!r}" for row in predictions]


def _predict(url: str, name: str, texts: list[str], card: dict | None) -> Any:
    from serving.client import predict

    return predict(url, name, texts, card=card)


def _serve(args: argparse.Namespace, result: Any, name: str) -> int:
    from serving.predictor import serve

    print(
        f"serving {result.version} as model {name!r} on http://{args.host}:{args.http_port} (Ctrl-C stops)",
        flush=True,
    )
    serve(result.uri, name, args.http_port, host=args.host)
    return 0


def _free_port(host: str, port: int) -> int:
    """``port`` if nothing listens there (0: one the OS picks), else a UsageError naming the fix."""
    import socket

    with socket.socket() as probe:
        # As uvicorn binds: connections of a previous run in TIME_WAIT do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UsageError(
                f"cannot serve on {host}:{port}: {error.strerror or error}; pass --http-port P (0: any free one)"
            ) from None
        return probe.getsockname()[1]


def _serve_and_predict(
    args: argparse.Namespace, result: Any, name: str, payload: dict[str, Any], lines: list[str]
) -> int:
    """Start the predictor (the same ``python -m serving.predictor`` a user runs), answer ``--predict``
    through the client, print the answers, stop the server: the whole main job in one command."""
    import subprocess
    import tempfile
    import time
    import urllib.request

    port = _free_port(args.host, args.http_port)
    url = f"http://{args.host}:{port}"
    argv = [sys.executable, "-m", "serving.predictor", "--model_dir", result.uri, "--model_name", name,
            "--http_port", str(port), "--host", args.host]  # fmt: skip
    with tempfile.TemporaryFile("w+") as log:
        print(f"serving {result.version} as model {name!r} on {url} for {len(args.predict)} prediction(s)",
              file=sys.stderr, flush=True)  # fmt: skip
        server = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + args.timeout
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    tail = "\n".join(log.read().splitlines()[-5:])
                    raise PromoteError(f"the local predictor exited with code {server.returncode}:\n{tail}")
                try:
                    with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise PromoteError(
                        f"the local predictor was not ready within {args.timeout:g} s; raise --timeout"
                    )
                time.sleep(0.25)
            predictions = _predict(url, name, args.predict, result.card)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    payload["served"] = {"url": url, "model": name}
    payload["predictions"] = predictions
    lines += _prediction_lines(predictions)
    _emit(args, payload, lines)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from serving.deploy import Deployer, url_of

    deployed = Deployer.connect(args.kubeconfig, args.context).rollback(
        args.rollback, args.namespace, args.timeout
    )
    model = deployed["spec"]["predictor"]["model"]
    payload = {"name": args.rollback, "namespace": args.namespace, "storage_uri": model.get("storageUri"),
               "url": url_of(deployed)}  # fmt: skip
    _emit(
        args,
        payload,
        [f"rolled back: {args.namespace}/{args.rollback} serves {model.get('storageUri')} again"],
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check(args, parser)
        return run(args)
    except (KatibSuiteError, TrainerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
