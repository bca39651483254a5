"""`deploy/` validated: what `cargo xtask test` runs in the tools venv.

- The Kubernetes manifests (Deployment, Service, HorizontalPodAutoscaler) against the
  Kubernetes API's schemas with `kubernetes-validate` (PyPI; strict: an unknown field is
  an error).
- The KServe manifests (ServingRuntime, InferenceService) against KServe's own schema as
  its Python SDK (`kserve` on PyPI) carries it: every field is looked up in the SDK's
  generated model of its type (unknown fields and wrong types are errors, required fields
  are enforced by the models themselves), and every Kubernetes type inside them
  (containers, probes, resources) against the Kubernetes schema as above.
- The Dockerfile (`dockerfile-parse`): several stages; the last runs as a non-root user,
  has a health check on /health/ready, exposes the port the manifests probe, and sets
  the shutdown settings the manifests' grace period is longer than.
- The contract between them: the Deployment's grace period is longer than the shutdown
  delay plus the drain timeout, its probes are the server's health routes, and its memory
  request holds the peak RSS a replica was measured at (`--rss-bytes`, from the rolling
  restart of the same run).

    python manifests.py --deploy deploy --rss-bytes 1800000000

Prints each check; the first failure exits non-zero, naming the file and field.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser
from referencing import Registry, Resource

KUBERNETES = "1.35.0"


class Invalid(SystemExit):
    pass


def fail(where: str, message: str) -> None:
    raise Invalid(f"manifest check failed: {where}: {message}")


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- Kubernetes's own kinds --------------------------------------------------------------


def kubernetes_kind(path: Path, resource: dict) -> None:
    try:
        version = kubernetes_validate.validate(resource, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as error:
        field = ".".join(str(part) for part in error.path)
        fail(f"{path}, {resource.get('kind')} {field}", error.message)
    print(f"  {path}: {resource['kind']} {resource['metadata']['name']} valid against Kubernetes {version} (strict)", flush=True)


def kubernetes_definitions() -> tuple[dict, Registry]:
    """Kubernetes-validate's strict definitions, for the Kubernetes types inside KServe's."""
    package = Path(kubernetes_validate.__file__).parent
    folder = package / "kubernetes-json-schema" / f"v{KUBERNETES}-local-strict"
    contents = yaml.safe_load((folder / "_definitions.json").read_text())
    registry = Registry().with_resource("https://kubernetes.io/api/_definitions.json", Resource.from_contents(contents))
    return contents["$defs"], registry


DEFINITIONS, REGISTRY = kubernetes_definitions()


def kubernetes_type(name: str) -> str | None:
    """`V1Container` → `io.k8s.api.core.v1.Container` (one definition must match)."""
    match = re.fullmatch(r"V(\d+(?:alpha\d+|beta\d+)?)(\w+)", name)
    if not match:
        return None
    suffix = f".v{match.group(1)}.{match.group(2)}"
    found = [key for key in DEFINITIONS if key.endswith(suffix)]
    return found[0] if len(found) == 1 else None


def validate_kubernetes_type(where: str, definition: str, value: object) -> None:
    schema = {"$ref": f"https://kubernetes.io/api/_definitions.json#/$defs/{definition}"}
    validator = jsonschema.Draft202012Validator(schema, registry=REGISTRY)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        fail(f"{where}.{'.'.join(str(p) for p in error.path)}", error.message)


# --- KServe's kinds, through its SDK's models ---------------------------------------------


def kserve_models() -> types.ModuleType:
    """`kserve.models` without `kserve/__init__.py`, which starts the model server's imports
    (fastapi, grpc, …): the generated models need only their own package."""
    spec = importlib.util.find_spec("kserve")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the kserve package is not installed (python/tools.lock)")
    package = types.ModuleType("kserve")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["kserve"] = package
    return importlib.import_module("kserve.models")


MODELS = kserve_models()


def model_class(name: str):
    module = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    module = re.sub(r"v_(\d)", r"v\1", module)
    for candidate in (module, module.replace("_", "", 1)):
        try:
            return getattr(importlib.import_module(f"kserve.models.{candidate}"), name)
        except (ModuleNotFoundError, AttributeError):
            continue
    return getattr(MODELS, name, None)


def check_value(where: str, kind: str, value: object) -> object:
    """Checks `value` against the SDK's type string `kind`; returns it as the SDK's model
    would hold it (a model instance for a KServe type)."""
    if value is None:
        return None
    if kind.startswith("list[") and kind.endswith("]"):
        if not isinstance(value, list):
            fail(where, f"must be a list, got {type(value).__name__}")
        return [check_value(f"{where}[{i}]", kind[5:-1], item) for i, item in enumerate(value)]
    if kind.startswith("dict(") and kind.endswith(")"):
        if not isinstance(value, dict):
            fail(where, f"must be a map, got {type(value).__name__}")
        inner = kind[5:-1].split(",", 1)[1].strip()
        return {key: check_value(f"{where}.{key}", inner, item) for key, item in value.items()}
    primitive = {"str": str, "int": int, "bool": bool, "float": (int, float)}
    if kind in primitive:
        if not isinstance(value, primitive[kind]) or (kind == "int" and isinstance(value, bool)):
            fail(where, f"must be {kind}, got {value!r}")
        return value
    if kind in ("object", "datetime", "date"):
        return value
    cls = model_class(kind)
    if cls is not None and hasattr(cls, "openapi_types"):
        return check_model(where, cls, value)
    definition = kubernetes_type(kind)
    if definition is not None:
        validate_kubernetes_type(where, definition, value)
        return value
    fail(where, f"the SDK's type {kind} is neither a KServe model nor a Kubernetes definition")
    return None


def check_model(where: str, cls, value: object):
    if not isinstance(value, dict):
        fail(where, f"must be an object ({cls.__name__}), got {value!r}")
    by_json = {json_name: attribute for attribute, json_name in cls.attribute_map.items()}
    arguments = {}
    for key, item in value.items():
        attribute = by_json.get(key)
        if attribute is None:
            fail(f"{where}.{key}", f"unknown field of {cls.__name__}; its fields are {sorted(by_json)}")
        arguments[attribute] = check_value(f"{where}.{key}", cls.openapi_types[attribute], item)
    try:
        return cls(**arguments)
    except ValueError as error:
        fail(where, f"{cls.__name__}: {error}")
    return None


def kserve_kind(path: Path, resource: dict) -> None:
    group, version = resource["apiVersion"].split("/")
    if group != "serving.kserve.io":
        fail(str(path), f"apiVersion {resource['apiVersion']} is not KServe's")
    name = f"V1{version[2:].capitalize()}{resource['kind']}" if version != "v1" else f"V1{resource['kind']}"
    name = {"v1alpha1": f"V1alpha1{resource['kind']}", "v1beta1": f"V1beta1{resource['kind']}"}.get(version, name)
    cls = getattr(MODELS, name, None)
    if cls is None:
        fail(str(path), f"KServe's SDK has no {name}")
    check_model(f"{path}: {resource['kind']}", cls, resource)
    print(f"  {path}: {resource['kind']} {resource['metadata']['name']} valid against KServe's schema ({name}, kserve SDK)", flush=True)


# --- the Dockerfile and the contract between the files ------------------------------------


def env_of(container: dict) -> dict:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


def milliseconds(where: str, value: str | None) -> int:
    if value is None or not str(value).isdigit():
        fail(where, f"must set a number of milliseconds, got {value!r}")
    return int(value)


def memory_bytes(where: str, quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+)([KMGT]i?)?", str(quantity))
    if not match:
        fail(where, f"{quantity!r} is not a memory quantity")
    return int(match.group(1)) * units.get(match.group(2) or "", 1)


def dockerfile(path: Path) -> dict:
    parser = DockerfileParser(path=str(path))
    stages = [item for item in parser.structure if item["instruction"] == "FROM"]
    if len(stages) < 2:
        fail(str(path), f"a multi-stage build needs several FROM, found {len(stages)}")
    last = max(item["startline"] for item in stages)
    final = [item for item in parser.structure if item["startline"] >= last]
    instructions = {item["instruction"]: item["value"] for item in final}
    user = instructions.get("USER", "root").split(":")[0]
    if user in ("root", "0"):
        fail(f"{path}, USER", "the runtime stage must not run as root")
    health = instructions.get("HEALTHCHECK", "")
    if "/health/ready" not in health:
        fail(f"{path}, HEALTHCHECK", f"must probe /health/ready, is {health!r}")
    env = parser.envs
    print(
        f"  {path}: {len(stages)} stages, the last runs as uid {user}, health check on /health/ready, exposes {instructions.get('EXPOSE')}",
        flush=True,
    )
    return {"expose": instructions.get("EXPOSE", ""), "env": env}


def contract(path: Path, deployment: dict, image: dict, rss_bytes: int) -> None:
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {**image["env"], **env_of(container)}
    delay = milliseconds(f"{path}, MODELCRATE_SHUTDOWN_DELAY_MS", env.get("MODELCRATE_SHUTDOWN_DELAY_MS"))
    drain = milliseconds(f"{path}, MODELCRATE_DRAIN_TIMEOUT_MS", env.get("MODELCRATE_DRAIN_TIMEOUT_MS"))
    grace = pod.get("terminationGracePeriodSeconds", 30) * 1000
    if grace <= delay + drain:
        fail(f"{path}, terminationGracePeriodSeconds", f"{grace} ms is not longer than the shutdown delay and drain ({delay} + {drain} ms)")
    probes = {probe: container.get(probe, {}).get("httpGet", {}).get("path") for probe in ("readinessProbe", "livenessProbe")}
    if probes != {"readinessProbe": "/health/ready", "livenessProbe": "/health/live"}:
        fail(f"{path}, probes", f"readiness must be /health/ready and liveness /health/live, are {probes}")
    port = container["ports"][0]["containerPort"]
    if str(port) not in image["expose"].split():
        fail(f"{path}, containerPort", f"{port} is not the port the Dockerfile exposes ({image['expose']})")
    request = memory_bytes(f"{path}, resources.requests.memory", container["resources"]["requests"]["memory"])
    limit = memory_bytes(f"{path}, resources.limits.memory", container["resources"]["limits"]["memory"])
    if rss_bytes > request or request > limit:
        fail(f"{path}, resources", f"the request ({request / 2**30:.2f} GiB) must hold the measured peak RSS ({rss_bytes / 2**30:.2f} GiB) and fit the limit ({limit / 2**30:.2f} GiB)")
    print(
        f"  contract: grace {grace / 1000:.0f} s > shutdown delay {delay / 1000:.0f} s + drain {drain / 1000:.0f} s; "
        f"probes /health/ready and /health/live on port {port}; memory request {request / 2**30:.1f} GiB ≥ measured peak RSS {rss_bytes / 2**30:.2f} GiB, limit {limit / 2**30:.1f} GiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deploy", required=True, type=Path)
    parser.add_argument("--rss-bytes", required=True, type=int)
    args = parser.parse_args()
    image = dockerfile(args.deploy / "Dockerfile")
    deployment = None
    for path in sorted(args.deploy.rglob("*.yaml")):
        for resource in documents(path):
            if resource.get("apiVersion", "").startswith("serving.kserve.io/"):
                kserve_kind(path, resource)
            else:
                kubernetes_kind(path, resource)
            if resource.get("kind") == "Deployment":
                deployment = (path, resource)
    if deployment is None:
        fail(str(args.deploy), "no Deployment")
    contract(deployment[0], deployment[1], image, args.rss_bytes)
    print("deploy: every manifest valid, and the contract between them holds", flush=True)


if __name__ == "__main__":
    main()
