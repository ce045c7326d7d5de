"""Trial-template checks: Katib's webhook rules for trialParameters and the template, and the run-time
footguns (primary container, PyTorchJob shape, what the trainer prints and how the batch divides)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from experiments.spec._errors import Problem
from experiments.spec._k8s import (
    KNOWN_KINDS,
    REPLICA_SPEC_KEYS,
    all_container_names,
    containers,
    get,
    replica_specs,
)
from experiments.spec._model import Experiment

PARAM_PLACEHOLDER = "${{trialParameters.{}}}"
# pkg/controller.v1beta1/consts/const.go, verbatim (Go RE2 and Python agree on these).
PARAM_PLACEHOLDER_RE = re.compile(r"\$\{trialParameters\..+?\}")
META_REFERENCE_RE = re.compile(r"\$\{trialSpec\.(.+?)\}")
META_INDEX_RE = re.compile(r"(.+)\[(.+)]")
META_KEYS = ("Name", "Namespace", "Kind", "APIVersion", "Labels", "Annotations")
TT = "spec.trialTemplate"


def template_string(trial_spec: Mapping[str, Any]) -> str:
    # Katib substitutes in the JSON text of the template; so do we.
    return json.dumps(trial_spec, default=str, ensure_ascii=False)


def is_meta_reference(reference: str) -> bool:
    match = META_REFERENCE_RE.search(reference)
    if not match:
        return False
    key = match.group(1)
    if key in META_KEYS:
        return True
    sub = META_INDEX_RE.search(key)
    return bool(sub) and sub.group(1) in META_KEYS


def _trial_parameters(exp: Experiment) -> list[Problem]:
    tt = exp.trial_template
    out = []
    param_names = {p.name for p in exp.parameters}
    text = template_string(tt.trial_spec) if tt.trial_spec is not None else None
    names: set[str] = set()
    refs: set[str] = set()
    for i, tp in enumerate(tt.trial_parameters):
        path = f"{TT}.trialParameters[{i}]"
        if not tp.name or not tp.reference or "{" in tp.name or "}" in tp.name:
            out.append(
                Problem(path, tp.name, "name and reference are required and name must not contain '{' or '}'")
            )
            continue
        if tp.name in names:
            out.append(
                Problem(f"{path}.name", tp.name, "duplicate trial parameter name; rename or remove one")
            )
            continue
        if tp.reference in refs:
            out.append(
                Problem(
                    f"{path}.reference",
                    tp.reference,
                    "another trial parameter has this reference; remove one",
                )
            )
            continue
        names.add(tp.name)
        refs.add(tp.reference)
        if tp.reference.startswith("${") and not is_meta_reference(tp.reference):
            out.append(
                Problem(
                    f"{path}.reference",
                    tp.reference,
                    f"unknown trial metadata; use one of ${{trialSpec.<{'|'.join(META_KEYS[:4])}>}} or "
                    "${trialSpec.Labels[key]} / ${trialSpec.Annotations[key]}",
                )
            )
        elif not is_meta_reference(tp.reference) and param_names and tp.reference not in param_names:
            out.append(
                Problem(
                    f"{path}.reference",
                    tp.reference,
                    f"is not a parameter; must be one of [{', '.join(sorted(param_names))}] or ${{trialSpec.Name}}",
                )
            )
        elif is_meta_reference(tp.reference) and tt.trial_spec is not None:
            key = META_REFERENCE_RE.search(tp.reference).group(1)  # type: ignore[union-attr]
            sub = META_INDEX_RE.search(key)
            if sub and sub.group(1) in ("Labels", "Annotations"):
                where = "labels" if sub.group(1) == "Labels" else "annotations"
                meta = get(tt.trial_spec, "metadata", where)
                if not isinstance(meta, Mapping) or sub.group(2) not in meta:
                    out.append(
                        Problem(
                            f"{path}.reference",
                            tp.reference,
                            f"trialSpec.metadata.{where} has no key {sub.group(2)!r}; add it or the trial fails to start",
                        )
                    )
        if text is not None:
            placeholder = PARAM_PLACEHOLDER.format(tp.name)
            if placeholder not in text:
                out.append(
                    Problem(
                        f"{path}.name",
                        tp.name,
                        f"is never used: put {placeholder} in the trialSpec (e.g. in the command) or remove it",
                    )
                )
            text = text.replace(placeholder, "test-value")
    if text is not None:
        for leftover in sorted(set(PARAM_PLACEHOLDER_RE.findall(text))):
            out.append(
                Problem(
                    f"{TT}.trialSpec",
                    leftover,
                    "is not declared in trialParameters; add {name: ..., reference: <parameter>} or fix the spelling",
                )
            )
    # Katib accepts a parameter no trial ever receives; the search then tunes nothing.
    referenced = {tp.reference for tp in tt.trial_parameters}
    for i, p in enumerate(exp.parameters):
        if p.name and p.name not in referenced and exp.algorithm.algorithm_name != "hyperband":
            out.append(
                Problem(
                    f"spec.parameters[{i}].name",
                    p.name,
                    "is searched but no trialParameter references it, so trials never see it; "
                    "add a trialParameter with this reference",
                )
            )
    return out


def _template_shape(exp: Experiment) -> list[Problem]:
    tt = exp.trial_template
    out = []
    if not tt.primary_container_name:
        out.append(
            Problem(f"{TT}.primaryContainerName", None, "is required: the container that runs the trainer")
        )
    if not tt.success_condition or not tt.failure_condition:
        out.append(
            Problem(
                TT,
                None,
                f"successCondition and failureCondition are required for kind {tt.kind!r} "
                "(Katib sets them only for Job, TrainJob and the Kubeflow jobs TFJob, PyTorchJob, XGBoostJob, MPIJob)",
            )
        )
    if tt.trial_spec is None and tt.config_map is None:
        out.append(Problem(f"{TT}.trialSpec", None, "one of trialSpec or configMap is required"))
        return out
    if tt.trial_spec is not None and tt.config_map is not None:
        out.append(Problem(TT, None, "only one of trialSpec or configMap can be specified"))
        return out
    if tt.config_map is not None:
        missing = [
            k for k in ("configMapName", "configMapNamespace", "templatePath") if not tt.config_map.get(k)
        ]
        if missing:
            out.append(Problem(f"{TT}.configMap", dict(tt.config_map), f"missing {', '.join(missing)}"))
        return out
    spec = tt.trial_spec
    if get(spec, "metadata", "name") or get(spec, "metadata", "namespace"):
        out.append(
            Problem(
                f"{TT}.trialSpec.metadata",
                dict(spec.get("metadata") or {}),
                "omit name and namespace; Katib sets them",
            )
        )
    if not spec.get("apiVersion") or not spec.get("kind"):
        out.append(Problem(f"{TT}.trialSpec", None, "apiVersion and kind are required"))
    return out


def _primary_container(exp: Experiment) -> list[Problem]:
    tt = exp.trial_template
    spec = tt.trial_spec
    if spec is None or not tt.primary_container_name or tt.kind not in KNOWN_KINDS:
        return []
    names = sorted(set(all_container_names(spec)))
    if tt.primary_container_name not in names:
        return [
            Problem(
                f"{TT}.primaryContainerName",
                tt.primary_container_name,
                f"no container has this name in the trialSpec; must be one of [{', '.join(names)}]",
            )
        ]
    return []


def _job(exp: Experiment) -> list[Problem]:
    spec = exp.trial_template.trial_spec
    if spec is None or spec.get("kind") != "Job":
        return []
    if str(spec.get("apiVersion")) != "batch/v1":
        return [Problem(f"{TT}.trialSpec.apiVersion", spec.get("apiVersion"), "a Job is batch/v1")]
    if not containers(get(spec, "spec", "template")):
        return [
            Problem(
                f"{TT}.trialSpec.spec.template.spec.containers", None, "a Job needs at least one container"
            )
        ]
    return []


def _pytorchjob(exp: Experiment) -> list[Problem]:
    spec = exp.trial_template.trial_spec
    if spec is None or spec.get("kind") != "PyTorchJob":
        return []
    path = f"{TT}.trialSpec.spec"
    out = []
    if spec.get("apiVersion") != "kubeflow.org/v1":
        out.append(
            Problem(f"{TT}.trialSpec.apiVersion", spec.get("apiVersion"), "a PyTorchJob is kubeflow.org/v1")
        )
    raw = get(spec, "spec", "pytorchReplicaSpecs")
    if not isinstance(raw, Mapping) or not raw:
        return [
            *out,
            Problem(f"{path}.pytorchReplicaSpecs", raw, "is required: Master (1 replica) and Worker"),
        ]
    for name, replica in raw.items():
        r_path = f"{path}.pytorchReplicaSpecs.{name}"
        if name not in ("Master", "Worker"):
            out.append(Problem(r_path, name, "a PyTorchJob has only Master and Worker replicas"))
            continue
        replicas = get(replica, "replicas")
        if replicas is not None and (
            isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0
        ):
            out.append(Problem(f"{r_path}.replicas", replicas, "must be a non-negative integer"))
        elif name == "Master" and replicas not in (None, 1):
            out.append(
                Problem(
                    f"{r_path}.replicas",
                    replicas,
                    "a PyTorchJob has exactly 1 Master; put the rest in Worker",
                )
            )
        pod = containers(get(replica, "template"))
        pytorch = [c for c in pod if c.get("name") == "pytorch"]
        if not pytorch:
            out.append(
                Problem(
                    f"{r_path}.template.spec.containers",
                    [c.get("name") for c in pod],
                    "the Training Operator needs a container named 'pytorch' in every replica",
                )
            )
        elif not pytorch[0].get("image"):
            out.append(Problem(f"{r_path}.template.spec.containers[pytorch].image", None, "is required"))
    elastic = get(spec, "spec", "elasticPolicy")
    if elastic is not None and "Worker" not in raw:
        out.append(Problem(f"{path}.elasticPolicy", elastic, "an elastic PyTorchJob needs Worker replicas"))
    nproc = get(spec, "spec", "nprocPerNode")
    if nproc is not None and not (
        isinstance(nproc, str) and (nproc in ("auto", "cpu", "gpu") or nproc.isdigit())
    ):
        out.append(
            Problem(
                f"{path}.nprocPerNode", nproc, 'must be "auto", "cpu", "gpu" or a quoted integer like "2"'
            )
        )
    if exp.trial_template.primary_container_name not in (None, "pytorch"):
        out.append(
            Problem(
                f"{TT}.primaryContainerName",
                exp.trial_template.primary_container_name,
                "the PyTorchJob trainer container is 'pytorch'; set primaryContainerName: pytorch",
            )
        )
    out += _name_length(exp, raw)
    return out


def _name_length(exp: Experiment, raw: Mapping) -> list[Problem]:
    # The operator makes a Service "<trial>-worker-<i>"; a Service name is a 63-character DNS label.
    longest = 0
    for name, (count, _) in replica_specs(exp.trial_template.trial_spec or {}).items():
        longest = max(longest, len(f"-{name.lower()}-{max(count - 1, 0)}"))
    limit = 63 - 9 - longest
    if exp.name and len(exp.name) > limit:
        return [
            Problem(
                "metadata.name",
                exp.name,
                f"is {len(exp.name)} characters; replica Services '<trial>-worker-N' must fit 63, so use at most {limit}",
            )
        ]
    return []


def _argv(container: Mapping) -> list[str]:
    items = []
    for key in ("command", "args"):
        value = container.get(key)
        if isinstance(value, list):
            items += [str(v) for v in value]
    return items


def _flag_value(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        # A shell command line in one string ("bash -c 'torchrun ... --flag=x'").
        match = re.search(re.escape(flag) + r"[= ]([^\s'\"]+)", arg)
        if match and (" " in arg):
            return match.group(1)
    return None


def _world_size(spec: Mapping) -> tuple[int, str]:
    replicas = sum(count for count, _ in replica_specs(spec).values()) or 1
    nproc = get(spec, "spec", "nprocPerNode")
    if isinstance(nproc, str) and nproc.isdigit():
        return replicas * int(nproc), f"{replicas} replicas x nprocPerNode {nproc}"
    gpus = set()
    for _, template in replica_specs(spec).values():
        for c in containers(template):
            limit = get(c, "resources", "limits", "nvidia.com/gpu")
            if limit is not None:
                gpus.add(str(limit))
    if nproc in (None, "auto", "gpu") and len(gpus) == 1 and next(iter(gpus)).isdigit():
        per = int(next(iter(gpus)))
        return replicas * per, f"{replicas} replicas x {per} GPU"
    return replicas, f"{replicas} replicas"


def _trainer(exp: Experiment) -> list[Problem]:
    """When the trial runs ``trainer.train``: metric names it prints, and a batch that divides."""
    tt = exp.trial_template
    spec = tt.trial_spec
    if spec is None:
        return []
    argvs = []
    for _, template in replica_specs(spec).values():
        for c in containers(template):
            if c.get("name") == tt.primary_container_name:
                argvs.append(_argv(c))
    argvs = [a for a in argvs if any("trainer.train" in arg for arg in a)]
    if not argvs:
        return []
    from trainer.reporting import METRIC_NAMES

    out = []
    obj = exp.objective
    fix = f"the trainer prints [{', '.join(METRIC_NAMES)}]"
    if obj.objective_metric_name and obj.objective_metric_name not in METRIC_NAMES:
        out.append(
            Problem(
                "spec.objective.objectiveMetricName", obj.objective_metric_name, f"is never printed; {fix}"
            )
        )
    for i, name in enumerate(obj.additional_metric_names):
        if name not in METRIC_NAMES:
            out.append(
                Problem(f"spec.objective.additionalMetricNames[{i}]", name, f"is never printed; {fix}")
            )

    value = _flag_value(argvs[0], "--global_batch_size")
    match = re.fullmatch(r"\$\{trialParameters\.(.+?)\}", value or "")
    if match:
        tp = next((t for t in tt.trial_parameters if t.name == match.group(1)), None)
        param = next((p for p in exp.parameters if tp and p.name == tp.reference), None)
        if param is not None:
            divisor, how = _world_size(spec)
            values: list[str] = []
            if param.parameter_type in ("discrete", "categorical"):
                values = list(param.feasible_space.list)
            elif param.parameter_type == "int":
                fs = param.feasible_space
                try:
                    low, high, step = int(fs.min), int(fs.max), int(fs.step or 1)  # type: ignore[arg-type]
                    if step > 0 and (high - low) // step < 10_000:
                        values = [str(v) for v in range(low, high + 1, step)]
                except (TypeError, ValueError):
                    values = []
            bad = []
            for v in values:
                try:
                    number = float(v)
                except ValueError:
                    bad.append(v)
                    continue
                if not number.is_integer() or int(number) <= 0 or int(number) % divisor:
                    bad.append(v)
            if bad:
                index = exp.parameters.index(param)
                out.append(
                    Problem(
                        f"spec.parameters[{index}].feasibleSpace",
                        bad,
                        f"global batch size {param.name!r} must be a positive multiple of the world size "
                        f"{divisor} ({how}); drop these values or change the replicas",
                    )
                )
    elif value is not None and value.isdigit() and int(value) % _world_size(spec)[0]:
        out.append(
            Problem(
                f"{TT}.trialSpec",
                value,
                f"--global_batch_size must be a multiple of the world size {_world_size(spec)[0]}",
            )
        )
    return out


def check_template(exp: Experiment) -> list[Problem]:
    out = _template_shape(exp)
    out += _trial_parameters(exp)
    out += _primary_container(exp)
    out += _job(exp)
    out += _pytorchjob(exp)
    out += _trainer(exp)
    return out


__all__ = ["REPLICA_SPEC_KEYS", "check_template", "is_meta_reference", "template_string"]
