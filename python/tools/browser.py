"""The playground and a model card in a real browser: what `cargo xtask test` runs once
the server binary is up, in the tools venv (Playwright's Python package, driving Debian's
Chromium; no browser is downloaded).

For each served task it fills the playground's form as a person would (types a text,
uploads an image), presses the button, reads what the page rendered (each label, score,
span and box carries its value in a data attribute) and fails if that differs from what
the API answers to the same request, asked directly. Then it opens a model card and checks
it against the card's JSON. It saves screenshots of both. Every check prints what it
compared; the first difference exits non-zero, naming it.

    python browser.py --base http://127.0.0.1:PORT --golden golden --shots artifacts/screenshots
"""

from __future__ import annotations

import argparse
import json
import math
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

# Debian's Chromium as root on a machine with no network: the flags that keep it from
# reaching out (each refused connection costs time) and from needing a sandbox or a GPU.
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


class Mismatch(SystemExit):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Mismatch(f"browser check failed: {message}")


def api(base: str, path: str, body: bytes, content_type: str = "application/json") -> object:
    request = urllib.request.Request(f"{base}{path}", data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def api_json(base: str, path: str, body: dict) -> object:
    return api(base, path, json.dumps(body).encode())


def get(base: str, path: str) -> object:
    request = urllib.request.Request(f"{base}{path}", headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def run_form(page: Page, base: str, model: str, fill) -> None:
    """Opens the model's form, lets `fill` fill it, presses the button and waits for the answer."""
    page.goto(f"{base}/#{model}")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector(f"#model[data-model='{model}'] #form")
    fill(page)
    page.click("#run")
    page.wait_for_selector("#form .output[data-done]", timeout=TIMEOUT_MS)
    error = page.query_selector("[data-result=error]")
    check(error is None, f"{model}: the page shows an error: {error.inner_text() if error else ''}")


def shown_labels(page: Page) -> list[tuple[str, float]]:
    return page.eval_on_selector_all(
        "[data-result=labels] .name", "els => els.map(e => [e.dataset.label, Number(e.dataset.score)])"
    )


def same_scores(shown: list, answered: list[dict], what: str) -> None:
    expected = [(item["label"], item["score"]) for item in answered]
    check(len(shown) == len(expected), f"{what}: shown {len(shown)} labels, the API answered {len(expected)}")
    for (label, score), (want_label, want_score) in zip(shown, expected):
        check(label == want_label and score == want_score, f"{what}: shown {label} {score}, the API {want_label} {want_score}")
    print(f"  {what}: {len(shown)} labels shown as the API answers them (top {expected[0][0]} {expected[0][1]:.4f})", flush=True)


def text_classification(page: Page, base: str, model: str) -> None:
    text = "The central bank raised interest rates again to curb inflation."
    run_form(page, base, model, lambda p: p.fill("#text", text))
    answer = api_json(base, f"/models/{model}/predict", {"inputs": text, "parameters": {"top_k": None}})
    same_scores(shown_labels(page), answer, f"{model} (text → label bars)")


def token_classification(page: Page, base: str, model: str) -> None:
    text = "We upgraded Kubernetes to 1.29 and PostgreSQL to 16.2 before moving to Ubuntu 24.04."
    run_form(page, base, model, lambda p: p.fill("#text", text))
    shown = page.eval_on_selector_all(
        "[data-result=spans] mark",
        "els => els.map(e => [e.dataset.label, Number(e.dataset.start), Number(e.dataset.end), e.firstChild.textContent])",
    )
    answer = api_json(base, f"/models/{model}/predict", {"inputs": text})
    expected = [[e["entity_group"], e["start"], e["end"], text[e["start"] : e["end"]]] for e in answer]
    check(shown == expected, f"{model}: highlighted {shown}, the API's entities {expected}")
    check(len(shown) > 0, f"{model}: no entity found in {text!r}")
    print(f"  {model} (entities highlighted by type): {[(s[0], s[3]) for s in shown]}", flush=True)


def question_answering(page: Page, base: str, model: str) -> None:
    question = "Which version fixes the memory leak?"
    context = "Version 3.2 of the server fixes the memory leak in the cache. Version 3.3 adds a metrics endpoint."

    def fill(p: Page) -> None:
        p.fill("#question", question)
        p.fill("#context", context)

    run_form(page, base, model, fill)
    shown = page.eval_on_selector("[data-result=answer]", "e => [e.dataset.answer, Number(e.dataset.score)]")
    answer = api_json(base, f"/models/{model}/predict", {"inputs": {"question": question, "context": context}})
    check(shown == [answer["answer"], answer["score"]], f"{model}: shown {shown}, the API {answer}")
    marked = page.eval_on_selector_all("[data-result=spans] mark", "els => els.map(e => e.firstChild.textContent)")
    check(marked == [answer["answer"]], f"{model}: marked {marked} in the context")
    print(f"  {model} (answer marked in its context): {shown[0]!r} {shown[1]:.4f}", flush=True)


def feature_extraction(page: Page, base: str, model: str) -> None:
    query = "Shares in the bank rose after record profits."
    others = ["The lender's stock climbed on strong earnings.", "The striker scored twice in the final.", "New phones went on sale today."]

    def fill(p: Page) -> None:
        p.fill("#query", query)
        p.fill("#others", "\n".join(others))

    run_form(page, base, model, fill)
    vectors = api_json(base, f"/models/{model}/predict", {"inputs": [query, *others]})

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    ranked = sorted(((text, cosine(vectors[0], vector)) for text, vector in zip(others, vectors[1:])), key=lambda p: -p[1])
    shown = shown_labels(page)
    check([label for label, _ in shown] == [text for text, _ in ranked], f"{model}: ranked {shown}, from the API's vectors {ranked}")
    check(all(abs(s - r) < 1e-6 for (_, s), (_, r) in zip(shown, ranked)), f"{model}: similarities {shown} against {ranked}")
    print(f"  {model} (similarity and search): {ranked[0][0]!r} first at {ranked[0][1]:.4f}", flush=True)


def upload(page: Page, path: Path):
    return lambda p: p.set_input_files("#image", str(path))


def image_classification(page: Page, base: str, model: str, image: Path) -> None:
    run_form(page, base, model, upload(page, image))
    answer = api(base, f"/models/{model}/predict", image.read_bytes(), "image/png")
    same_scores(shown_labels(page), answer, f"{model} (upload → top-k bars, {image.name})")


def object_detection(page: Page, base: str, model: str, image: Path) -> None:
    run_form(page, base, model, upload(page, image))
    page.wait_for_selector(".figure .box", timeout=TIMEOUT_MS)
    answer = api(base, f"/models/{model}/predict", image.read_bytes(), "image/png")
    boxes = page.eval_on_selector_all(".figure .box span", "els => els.map(e => e.textContent)")
    expected = [f"{d['label']} {d['score']:.2f}" for d in answer]
    check(boxes == expected, f"{model}: boxes drawn {boxes}, the API's detections {expected}")
    same_scores(shown_labels(page), answer, f"{model} (upload → boxes, {image.name})")


def zero_shot(page: Page, base: str, model: str, image: Path) -> None:
    labels = "zebra, horse, cat, giraffe"

    def fill(p: Page) -> None:
        upload(p, image)(p)
        p.fill("#labels", labels)

    run_form(page, base, model, fill)
    template = page.input_value("#template")
    query = urllib.parse.urlencode({"candidate_labels": labels, "hypothesis_template": template})
    answer = api(base, f"/models/{model}/predict?{query}", image.read_bytes(), "image/png")
    same_scores(shown_labels(page), answer, f"{model} (upload and labels → zero-shot bars, {image.name})")


def card(page: Page, base: str, model: str) -> None:
    described = get(base, f"/models/{model}")
    page.goto(f"{base}/models/{model}")
    check(page.inner_text("h1") == model, f"the card's title is {page.inner_text('h1')!r}")
    serving = page.eval_on_selector_all("tr.serves td:first-child", "els => els.map(e => e.textContent)")
    check(serving == [described["variant"]["name"]], f"the card marks {serving} as serving; the JSON says {described['variant']['name']}")
    rows = page.eval_on_selector_all("table.variants tbody tr", "els => els.map(e => e.cells[0].textContent)")
    check(rows == [v["name"] for v in described["variants"]], f"the card lists {rows}; the JSON {[v['name'] for v in described['variants']]}")
    text = page.inner_text(".card")
    check("Test accuracy" in text or "test" in text.lower(), "the card quotes its test figures")
    print(f"  card of {model}: {len(rows)} variants, `{serving[0]}` marked as serving, as its JSON says", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True)
    parser.add_argument("--golden", required=True, type=Path)
    parser.add_argument("--shots", required=True, type=Path)
    args = parser.parse_args()
    base = args.base.rstrip("/")
    args.shots.mkdir(parents=True, exist_ok=True)
    served = {model["name"]: model["task"] for model in get(base, "/models") if model.get("state") == "serving"}
    forms = {
        "text-classification": text_classification,
        "token-classification": token_classification,
        "question-answering": question_answering,
        "feature-extraction": feature_extraction,
    }
    images = {
        "image-classification": (image_classification, "animal-shapes/images/horse-rgb-300x200.png"),
        "object-detection": (object_detection, "animal-detect/images/scene-5-256x256.png"),
        "zero-shot-image-classification": (zero_shot, "animal-clip/images/zebra.png"),
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.set_default_timeout(TIMEOUT_MS)
        print(f"Chromium {browser.version} through Playwright: the playground against the API", flush=True)
        checked = 0
        for model, task in sorted(served.items()):
            if task in forms:
                forms[task](page, base, model)
            elif task in images:
                function, image = images[task]
                function(page, base, model, args.golden / image)
            else:
                raise Mismatch(f"browser check failed: no check for {model}'s task {task}")
            checked += 1
            if model == "news-topic":
                text_classification(page, base, model)
                page.screenshot(path=str(args.shots / "playground.png"))
            if task == "object-detection":
                page.screenshot(path=str(args.shots / "playground-detection.png"))
        card(page, base, "news-topic")
        page.screenshot(path=str(args.shots / "card.png"), full_page=True)
        browser.close()
    print(f"browser: {checked} models' forms and a model card shown as the API answers; screenshots in {args.shots}", flush=True)


if __name__ == "__main__":
    main()
