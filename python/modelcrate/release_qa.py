"""Synthetic questions over release text whose answers are spans of it, for `release-qa`.

No question-answering set for this domain can be installed offline, so this module
writes one, as `release_notes` writes the entity set, and says so. A passage is a few
sentences about software releases: facts with a role (a version *fixes* an issue,
*introduces* or *deprecates* a feature, an advisory says which versions a CVE *affects*,
a note *concerns* a product) among distractors (other facts of the same kinds about
other issues and features, and `release_notes` sentences). Each question asks for one
role of one fact — which release fixes the memory leak, what product an advisory covers,
since which version a feature is deprecated — in varied phrasings, and its answer is the
character span of that product or version in the passage.

Some passages are long (dozens of sentences, beyond the model's max length), so that
the windows a long context is split into, and the choice of the best span across them,
matter; some questions ask about an issue or feature the passage never mentions, and
have no answer (SQuAD 2.0's impossible questions). The split is by template and name:
test questions use only fact sentences, question phrasings and product names that no
training question uses.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from . import release_notes

# How many questions the generator writes in all; the spec's fractions cut it.
QUESTIONS = 2000
# The share of questions without an answer in the passage, and of long passages.
IMPOSSIBLE_SHARE = 0.15
LONG_SHARE = 0.10

ISSUES = [
    "the memory leak", "the crash on startup", "the TLS handshake failure", "the data race in the scheduler",
    "the broken CSV export", "the slow login", "the deadlock under load", "the corrupted backups",
    "the missing translations", "the high CPU usage", "the file descriptor leak", "the wrong time zone",
    "the duplicated log lines", "the failing health check", "the blank settings page", "the stale cache",
    "the dropped WebSocket connections", "the import timeout", "the off-by-one in pagination",
    "the broken dark mode", "the flaky upload", "the truncated emails", "the overflow in the parser",
    "the DNS lookup failure", "the unreadable error message", "the hanging shutdown",
]
FEATURES = [
    "HTTP/3 support", "the plugin API", "dark mode", "the sync engine", "IPv6 support", "hot reload",
    "the CSV importer", "the legacy config format", "the XML API", "single sign-on", "the query planner",
    "offline mode", "the old dashboard", "two-factor login", "the REST v1 endpoints", "streaming replication",
    "the bundled web server", "Python 2 bindings", "the audit log", "incremental backups",
    "the command palette", "per-user quotas", "the classic theme", "GPU acceleration",
]

# Fact sentences by kind: {P} product, {V} version, {X} the issue, feature or CVE. The
# first `HELD_OUT` of each list are test-only.
FACT_SENTENCES: dict[str, list[str]] = {
    "fixes": [
        "{P} {V} fixes {X}.",
        "{X} is resolved in {P} {V}.",
        "Version {V} of {P} finally addresses {X}.",
        "Upgrade to {P} {V} to get rid of {X}.",
        "{P} {V} ships a fix for {X}.",
        "The {V} release of {P} corrects {X}.",
        "With {P} {V}, {X} is gone.",
        "We fixed {X} in {P} {V}.",
        "{P} {V} contains the patch for {X}.",
    ],
    "introduces": [
        "{P} {V} introduces {X}.",
        "{X} arrived in {P} {V}.",
        "Starting with {P} {V}, {X} is available.",
        "{P} added {X} in version {V}.",
        "New in {P} {V}: {X}.",
        "{X} first shipped with {P} {V}.",
        "The {V} release of {P} brings {X}.",
        "{P} {V} is the first version with {X}.",
    ],
    "deprecates": [
        "{X} is deprecated since {P} {V}.",
        "{P} {V} deprecates {X}.",
        "As of {P} {V}, {X} is deprecated and will be removed.",
        "{P} marked {X} as deprecated in {V}.",
        "Do not rely on {X}: {P} {V} deprecated it.",
        "{X} has been deprecated from {P} {V} on.",
        "Starting with version {V}, {P} deprecates {X}.",
    ],
    "affects": [
        "{X} affects {P} {V}.",
        "{P} {V} is affected by {X}.",
        "Advisory {X}: {P} {V} is vulnerable.",
        "{X} was found in {P} {V}.",
        "Systems running {P} {V} are exposed to {X}.",
        "A flaw tracked as {X} impacts {P} {V}.",
        "Security notice: {X} in {P} {V}.",
    ],
}
HELD_OUT = 2

# Questions by the fact's kind and the role asked for; `{X}` and `{P}` are the fact's.
# The first `HELD_OUT` of each list are test-only.
QUESTION_TEMPLATES: dict[tuple[str, str], list[str]] = {
    ("fixes", "V"): [
        "Which release fixes {X}?",
        "In which version of {P} was {X} fixed?",
        "What version fixes {X}?",
        "Which {P} version resolves {X}?",
        "Where is {X} fixed?",
        "What release of {P} should I install to fix {X}?",
        "Which version addresses {X}?",
    ],
    ("fixes", "P"): [
        "Which product got a fix for {X}?",
        "What software fixes {X}?",
        "In which product was {X} fixed?",
        "Which project resolved {X}?",
        "What product does the fix for {X} concern?",
    ],
    ("introduces", "V"): [
        "Since which version does {P} have {X}?",
        "Which release introduced {X}?",
        "When did {P} add {X}?",
        "What version brought {X}?",
        "In which version of {P} did {X} appear?",
        "Which {P} release first has {X}?",
    ],
    ("introduces", "P"): [
        "Which product introduced {X}?",
        "What software added {X}?",
        "Which project now offers {X}?",
        "What product got {X}?",
    ],
    ("deprecates", "V"): [
        "Since which version is {X} deprecated?",
        "Which {P} release deprecated {X}?",
        "When was {X} deprecated?",
        "What version deprecates {X}?",
        "From which version of {P} on is {X} deprecated?",
    ],
    ("deprecates", "P"): [
        "Which product deprecated {X}?",
        "What software is dropping {X}?",
        "Which project marked {X} as deprecated?",
        "In which product is {X} deprecated?",
    ],
    ("affects", "V"): [
        "Which version is affected by {X}?",
        "What release of {P} does {X} affect?",
        "Which {P} version is vulnerable to {X}?",
        "What version is exposed to {X}?",
        "Which version does {X} impact?",
    ],
    ("affects", "P"): [
        "What product does this advisory cover?",
        "Which product is affected by {X}?",
        "What software does {X} concern?",
        "Which product is vulnerable to {X}?",
        "What does {X} affect?",
    ],
}


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    context: str
    # Character spans into `context`; empty when the passage holds no answer.
    answers: list[dict]  # {"text", "start"}
    kind: str
    long: bool

    @property
    def impossible(self) -> bool:
        return not self.answers


def cve(rng: random.Random) -> str:
    return f"CVE-{rng.randint(2019, 2026)}-{rng.randint(1000, 49999)}"


@dataclass
class Fact:
    kind: str
    sentence: str
    product: str
    version: str
    subject: str
    # Character offsets of the product and version inside `sentence`.
    product_at: int
    version_at: int


def fact(kind: str, template: str, product: str, rng: random.Random, subject: str) -> Fact:
    """`template` filled with `product`, a fresh version and `subject`, with where the
    product and the version landed."""
    version = release_notes.version(rng)
    text, spans = "", {}
    rest = template
    while "{" in rest:
        before, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        text += before
        value = {"P": product, "V": version, "X": subject}[slot]
        spans[slot] = len(text)
        text += value
    text += rest
    # A sentence that starts with the subject (an issue or feature) starts with a capital.
    if text.startswith(subject) and subject[:1].islower():
        text = text[0].upper() + text[1:]
    return Fact(kind, text, product, version, subject, spans["P"], spans["V"])


def subject_of(kind: str, rng: random.Random) -> str:
    if kind == "fixes":
        return rng.choice(ISSUES)
    if kind == "affects":
        return cve(rng)
    return rng.choice(FEATURES)


def passage(
    target: Fact, rng: random.Random, products: list[str], sentences: dict[str, list[str]], long: bool, alone: bool
) -> tuple[str, int]:
    """The passage around `target`: distractor facts (other subjects) and release-note
    sentences, shuffled; returns it and where `target` starts in it. With `alone`, no
    other sentence is of the target's kind (nor, for an advisory, about security), for
    a question that names no subject ("What product does this advisory cover?")."""
    count = rng.randint(10, 22) if long else rng.randint(0, 4)
    kinds = [kind for kind in sentences if not (alone and kind == target.kind)]
    notes = [
        template
        for template in range(len(release_notes.TEMPLATES))
        if not (alone and target.kind == "affects" and "security" in release_notes.TEMPLATE_TOPICS[template])
    ]
    others: list[str] = []
    used = {target.subject}
    for _ in range(count):
        if rng.random() < 0.5:
            kind = rng.choice(kinds)
            subject = subject_of(kind, rng)
            if subject in used:
                continue
            used.add(subject)
            others.append(fact(kind, rng.choice(sentences[kind]), rng.choice(products), rng, subject).sentence)
        else:
            others.append(release_notes.fill(rng.choice(notes), products, rng).text)
    position = rng.randint(0, len(others))
    before = " ".join(others[:position])
    text = " ".join([*others[:position], target.sentence, *others[position:]])
    return text, len(before) + (1 if before else 0)


def split_lists(rng: random.Random) -> dict[str, dict]:
    """The fact sentences, question phrasings and products each split may use."""
    products = sorted(release_notes.PRODUCTS)
    rng.shuffle(products)
    held_products = products[: len(products) // 5]
    seen_products = products[len(held_products) :]
    facts_held = {kind: templates[:HELD_OUT] for kind, templates in FACT_SENTENCES.items()}
    facts_seen = {kind: templates[HELD_OUT:] for kind, templates in FACT_SENTENCES.items()}
    questions_held = {key: templates[:HELD_OUT] for key, templates in QUESTION_TEMPLATES.items()}
    questions_seen = {key: templates[HELD_OUT:] for key, templates in QUESTION_TEMPLATES.items()}
    return {
        "seen": {"products": seen_products, "facts": facts_seen, "questions": questions_seen},
        "held": {"products": held_products, "facts": facts_held, "questions": questions_held},
    }


def draw(rng: random.Random, count: int, pool: dict, prefix: str) -> list[Question]:
    """`count` questions from the templates and products in `pool`."""
    drawn: list[Question] = []
    seen: set[tuple[str, str]] = set()
    products, sentences, phrasings = pool["products"], pool["facts"], pool["questions"]
    while len(drawn) < count:
        kind = rng.choice(list(sentences))
        role = rng.choice(["V", "V", "P"])
        long = rng.random() < LONG_SHARE
        phrasing = rng.choice(phrasings[(kind, role)])
        named = "{X}" in phrasing
        target = fact(kind, rng.choice(sentences[kind]), rng.choice(products), rng, subject_of(kind, rng))
        context, at = passage(target, rng, products, sentences, long, alone=not named)
        # A question that names no subject always has its answer in the passage.
        impossible = named and rng.random() < IMPOSSIBLE_SHARE
        subject = target.subject
        if impossible:
            # Ask about a subject of the same kind that the passage never mentions.
            subject = subject_of(kind, rng)
            if subject.lower() in context.lower():
                continue
        question = phrasing.format(X=subject, P=target.product)
        if (question, context) in seen:
            continue
        seen.add((question, context))
        answers = []
        if not impossible:
            offset = target.product_at if role == "P" else target.version_at
            text = target.product if role == "P" else target.version
            answers = [{"text": text, "start": at + offset}]
            if context[at + offset : at + offset + len(text)] != text:
                raise AssertionError(f"span of {text!r} misplaced in {context!r}")
        drawn.append(Question(f"{prefix}-{len(drawn):04d}", question, context, answers, kind, long))
    return drawn


def generate(seed: int, test_fraction: float, validation_fraction: float) -> dict[str, list[Question]]:
    """The three splits; test questions use only held-out sentences, phrasings and names."""
    rng = random.Random(seed)
    pools = split_lists(rng)
    test_count = round(QUESTIONS * test_fraction)
    validation_count = round(QUESTIONS * validation_fraction)
    train_count = QUESTIONS - test_count - validation_count
    return {
        "train": draw(rng, train_count, pools["seen"], "train"),
        "validation": draw(rng, validation_count, pools["seen"], "validation"),
        "test": draw(rng, test_count, pools["held"], "test"),
    }


def write_splits(directory: Path, splits: dict[str, list[Question]]) -> None:
    """One JSON line per question: {"id", "question", "context", "answers": [{"text",
    "start"}], "kind", "long"} (SQuAD 2.0's fields, an empty list for no answer)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, questions in splits.items():
        tmp = directory / f"{name}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as out:
            for q in questions:
                row = {"id": q.id, "question": q.question, "context": q.context, "answers": q.answers, "kind": q.kind, "long": q.long}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(directory / f"{name}.jsonl")


def read_split(directory: Path, name: str) -> list[dict]:
    with (directory / f"{name}.jsonl").open(encoding="utf-8") as rows:
        return [json.loads(line) for line in rows]
