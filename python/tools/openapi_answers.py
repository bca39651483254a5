"""Checks real answers against the server's own OpenAPI document.

Usage: python openapi_answers.py DOCUMENT SAMPLES

DOCUMENT is the server's /openapi.json; SAMPLES a JSON list of
{"path": "/models/news-topic/predict", "method": "post", "answer": ...}. Each answer
must validate against the document's schema for that route's 200 answer (JSON Schema
2020-12, which OpenAPI 3.1 schemas are). Run with the tools venv (python/tools.lock);
imports nothing of the project.
"""

import json
import sys

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:modelcrate:openapi"


def pointer(*parts):
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def main():
    document_path, samples_path = sys.argv[1], sys.argv[2]
    with open(document_path) as file:
        document = json.load(file)
    with open(samples_path) as file:
        samples = json.load(file)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry = Registry().with_resource(BASE, resource)
    failures = []
    for sample in samples:
        path, method = sample["path"], sample.get("method", "post")
        route = document["paths"].get(path, {}).get(method)
        if route is None:
            failures.append(f"{method.upper()} {path}: not in the document")
            continue
        where = pointer("paths", path, method, "responses", "200", "content", "application/json", "schema")
        validator = Draft202012Validator({"$ref": f"{BASE}#/{where}"}, registry=registry)
        errors = sorted(validator.iter_errors(sample["answer"]), key=lambda e: list(e.path))
        for error in errors[:3]:
            at = "/".join(str(part) for part in error.absolute_path) or "(the answer)"
            failures.append(f"{method.upper()} {path} ({sample.get('what', '')}) at {at}: {error.message[:300]}")
    if failures:
        print("answers that do not fit the document:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"{len(samples)} answers fit the document's schemas")


if __name__ == "__main__":
    main()
