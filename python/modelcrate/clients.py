"""Real clients against a running Modelcrate server: what `cargo xtask test`'s smoke step
runs once the server binary is up.

`python -m modelcrate.clients --base http://127.0.0.1:PORT` uses the `openai` package as
its users do (`OpenAI(base_url=…/v1)`): embeddings in its default transfer encoding
(base64) and as floats, with `dimensions`, then the errors it must raise by OpenAI's
statuses. Then `huggingface_hub`'s InferenceClient on TEI's `/embed` of a server of the
embedding model alone (`--tei-base`: TEI serves one model, and its clients name none),
with TEI's error types (it runs without `HF_HUB_OFFLINE`: it talks to these servers
only). Then the KServe
v2 protocol in plain HTTP, as its REST spec writes requests (`tritonclient` is not in the
lock): server and model metadata, readiness, and an inference from BYTES text. Every
check prints what it saw; the first failure exits non-zero with the reason.
"""

from __future__ import annotations

import argparse
import math
import struct

TEXTS = [
    "Shares in the bank rose after it reported record profits.",
    "The striker scored twice as United won the cup final.",
]


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"client check failed: {message}")


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def openai_embeddings(base: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{base}/v1", api_key="not-needed", max_retries=0)
    listed = [model.id for model in client.models.list()]
    check("news-embed" in listed, f"/v1/models lists {listed}")

    # The client asks for base64 by default and decodes it itself.
    answer = client.embeddings.create(model="news-embed", input=TEXTS)
    vectors = [item.embedding for item in answer.data]
    check(len(vectors) == 2 and all(len(v) == 384 for v in vectors), f"dimensions {[len(v) for v in vectors]}")
    check(all(abs(norm(v) - 1.0) < 1e-5 for v in vectors), "embeddings are unit length")
    check(answer.usage.prompt_tokens > 0 and answer.model == "news-embed", f"usage {answer.usage}, model {answer.model}")

    # The same float32s: JSON carries each as its shortest decimal, base64 as its bits.
    floats = client.embeddings.create(model="news-embed", input=TEXTS, encoding_format="float")
    as_float32 = lambda values: struct.pack(f"<{len(values)}f", *values)  # noqa: E731
    same = all(as_float32(x) == as_float32(y.embedding) for x, y in zip(vectors, floats.data))
    check(same, "base64 and float answers hold the same float32 values")

    short = client.embeddings.create(model="news-embed", input=TEXTS[0], dimensions=64, encoding_format="float")
    vector = short.data[0].embedding
    check(len(vector) == 64 and abs(norm(vector) - 1.0) < 1e-5, f"dimensions=64 gave {len(vector)} values, norm {norm(vector)}")

    # OpenAI's statuses, as its client sorts them: an invalid request is BadRequestError
    # (400), an unknown model NotFoundError (404).
    refusals = [
        (dict(model="news-topic", input="a text"), openai.BadRequestError, "feature-extraction", "model"),
        (dict(model="news-embed", input="word " * 400), openai.BadRequestError, "128 tokens", "input"),
        (dict(model="no-such-model", input="a text"), openai.NotFoundError, "no-such-model", None),
    ]
    for request, raised, says, param in refusals:
        try:
            client.embeddings.create(**request)
        except raised as error:
            body = error.body if isinstance(error.body, dict) else {}
            check(says in str(error) and body.get("param") == param, f"the refusal says why: {error}")
        else:
            raise SystemExit(f"client check failed: {request['model']} was not refused with {raised.__name__}")
    print(
        f"openai {openai.__version__}: /v1/models, embeddings (base64, float, dimensions); "
        "BadRequestError twice and NotFoundError: ok",
        flush=True,
    )


def tei(base: str) -> None:
    """TEI's routes through `huggingface_hub`'s InferenceClient, which posts to a URL as
    TEI's users point it at one: an embedding, then TEI's error types and statuses."""
    import huggingface_hub
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import BadRequestError, HfHubHTTPError

    client = InferenceClient(model=f"{base}/embed")
    vector = client.feature_extraction(TEXTS[0])
    check(vector.shape == (1, 384) and abs(norm(list(vector[0])) - 1.0) < 1e-5, f"/embed gave {vector.shape}")
    refusals = [(" ", BadRequestError, 400, "Empty"), ("word " * 400, HfHubHTTPError, 413, "Validation")]
    for text, raised, status, error_type in refusals:
        try:
            client.feature_extraction(text)
        except raised as error:
            answer = error.response.json()
            seen = (error.response.status_code, answer.get("error_type"))
            check(seen == (status, error_type), f"TEI's refusal: {seen}, {answer}")
        else:
            raise SystemExit(f"client check failed: /embed answered {text[:20]!r}")
    print(f"huggingface_hub {huggingface_hub.__version__} on TEI's /embed: an embedding, Empty (400), Validation (413): ok", flush=True)


def kserve_v2(base: str) -> None:
    import json
    import urllib.request

    def call(path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{base}{path}", data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            check(response.status == 200, f"{path} answered {response.status}")
            return json.loads(response.read())

    check(call("/v2/health/ready").get("ready") is True, "/v2/health/ready")
    metadata = call("/v2/models/news-topic")
    check(metadata["inputs"][0] == {"name": "text", "datatype": "BYTES", "shape": [-1]}, f"metadata {metadata['inputs']}")
    request = {
        "id": "smoke",
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": [
            "Arsenal beat Chelsea 2-1 in the league on Saturday",
            "The central bank raised interest rates again to curb inflation",
        ]}],
        "outputs": [{"name": "label"}, {"name": "scores"}],
    }
    answer = call("/v2/models/news-topic/infer", request)
    outputs = {output["name"]: output for output in answer["outputs"]}
    check(answer.get("id") == "smoke", f"the id is echoed: {answer.get('id')}")
    check(outputs["label"]["data"] == ["sports", "business"], f"labels {outputs['label']['data']}")
    check(outputs["scores"]["shape"] == [2, 5], f"scores shape {outputs['scores']['shape']}")
    print(f"KServe v2 (plain HTTP): metadata, readiness, infer → {outputs['label']['data']}: ok", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="the server's base URL")
    parser.add_argument("--tei-base", required=True, help="a server of news-embed alone, as TEI serves one model")
    args = parser.parse_args()
    openai_embeddings(args.base.rstrip("/"))
    tei(args.tei_base.rstrip("/"))
    kserve_v2(args.base.rstrip("/"))


if __name__ == "__main__":
    main()
