"""Synthetic software-release text with PRODUCT and VERSION entities, for `release-ner`.

No named-entity set for this domain can be installed offline, so this module writes one.
It is synthetic and says so: sentences are drawn from hand-written templates (release
notes, changelog lines, dependency bumps, support tickets, security advisories, upgrade
guides, chat messages, compatibility notes, and sentences with no entity at all), filled
with product names (one to four words, some with dots, digits, plus signs or accents)
and versions in the forms people write (`v2.3.1`, `16.2`, `3.0.0-rc.1`, `1.4.0-beta.2`,
`2024.10`, `12`, `1.0.0+build.7`, `R2023b`, `3.12.0a4`, …). Numbers that are not versions
(counts, percentages, ports, dates, issue and CVE numbers) appear as distractors, and
entities sit at the start and the end of sentences.

Every sentence carries its entities as character spans, so labels are exact by
construction. The split is by template *and* product: the test sentences use only
templates and products that no training sentence uses, so the held-out F1 measures
generalisation to unseen phrasings and names, not recall of the training strings.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

# BIO labels in id order: what `config.json`'s id2label holds.
LABELS = ["O", "B-PRODUCT", "I-PRODUCT", "B-VERSION", "I-VERSION"]
ENTITY_TYPES = ["PRODUCT", "VERSION"]

# How many sentences the generator writes in all; the spec's fractions cut it.
SENTENCES = 3000

PRODUCTS = [
    "PostgreSQL", "MySQL", "MariaDB", "SQLite", "Redis", "MongoDB", "Cassandra", "Elasticsearch",
    "OpenSearch", "ClickHouse", "CockroachDB", "Kafka", "RabbitMQ", "NATS", "etcd", "Consul",
    "Vault", "Terraform", "Nomad", "Kubernetes", "Docker Engine", "Docker Desktop", "Podman",
    "containerd", "Helm", "Istio", "Envoy", "Linkerd", "Prometheus", "Grafana", "Loki", "Jaeger",
    "OpenTelemetry Collector", "nginx", "Apache HTTP Server", "Caddy", "Traefik", "HAProxy",
    "Node.js", "Deno", "Bun", "Python", "CPython", "PyPy", "Ruby", "Ruby on Rails", "Django",
    "Flask", "FastAPI", "Rust", "Go", "Java", "OpenJDK", "Kotlin", "Scala", "Swift", "Xcode",
    ".NET", "ASP.NET Core", "TypeScript", "React", "React Native", "Vue", "Angular", "Svelte",
    "Next.js", "Nuxt", "Vite", "webpack", "Babel", "ESLint", "Prettier", "npm", "pnpm", "Yarn",
    "pip", "Poetry", "Cargo", "Gradle", "Maven", "Bazel", "CMake", "GCC", "LLVM", "Clang",
    "Visual Studio Code", "Visual Studio 2022", "IntelliJ IDEA", "PyCharm", "Android Studio",
    "Eclipse IDE", "Vim", "Neovim", "Emacs", "Sublime Text", "GitLab", "GitLab Runner",
    "Jenkins", "GitHub Actions Runner", "Argo CD", "Ansible", "Puppet", "Chef Infra Client",
    "Ubuntu", "Ubuntu Server", "Debian", "Fedora", "Red Hat Enterprise Linux", "Rocky Linux",
    "AlmaLinux", "Alpine Linux", "Arch Linux", "FreeBSD", "Windows 11", "Windows Server",
    "macOS Sonoma", "macOS", "iOS", "Android", "ChromeOS", "Firefox", "Firefox ESR", "Chrome",
    "Chromium", "Safari", "Thunderbird", "LibreOffice", "GIMP", "Inkscape", "Blender", "OBS Studio",
    "VLC", "Audacity", "Krita", "Zoom", "Slack", "Microsoft Teams", "Signal Desktop", "Telegram",
    "WordPress", "Drupal", "Joomla", "Magento", "Shopify CLI", "Nextcloud", "Mattermost",
    "PyTorch", "TensorFlow", "ONNX Runtime", "scikit-learn", "NumPy", "pandas", "Polars",
    "Jupyter Notebook", "JupyterLab", "Apache Spark", "Apache Airflow", "dbt Core", "Snowflake CLI",
    "OpenSSL", "OpenSSH", "curl", "Git", "Git for Windows", "Mercurial", "systemd", "glibc",
    "Linux kernel", "Wine", "Proton", "Steam Client", "Unity", "Unreal Engine", "Godot",
    "Qt", "GTK", "Electron", "Flutter", "Dart", "Kotlin Multiplatform", "Tauri",
    "Grafana Agent", "Zabbix Server", "Nagios Core", "Icinga", "Keycloak", "Auth0 SDK",
    "Stripe CLI", "Twilio SDK", "AWS CLI", "Azure CLI", "Google Cloud SDK", "kubectl", "k3s",
    "MinIO", "Ceph", "Proxmox VE", "VMware ESXi", "VirtualBox", "QEMU", "libvirt",
    "Elixir", "Erlang/OTP", "Phoenix", "Haskell Stack", "GHC", "Julia", "R", "RStudio",
    "MATLAB", "Octave", "Lua", "LuaJIT", "Perl", "PHP", "Laravel", "Symfony", "Composer",
    "Mastodon", "Matrix Synapse", "Element Desktop", "Jitsi Meet", "Rocket.Chat",
    "Kdenlive", "Darktable", "RawTherapee", "Scribus", "Calibre", "KeePassXC", "Bitwarden",
    "1Password", "Nextcloud Desktop Client", "Syncthing", "Tailscale", "WireGuard",
    "Zed", "Helix", "Ghostty", "Alacritty", "WezTerm", "tmux", "zsh", "fish shell", "Bash",
    "Café POS", "Nordlicht Analytics", "Señor Deploy", "Kraków Maps", "Zürich Ledger",
    "Ångström Build", "Mañana Scheduler", "Élan CRM", "Straße Router", "Sølvberg Cloud",
]

PRERELEASE = ["alpha", "beta", "rc", "pre", "dev", "preview"]


def version(rng: random.Random) -> str:
    """One version string in one of the forms people write."""
    major, minor, patch = rng.randint(0, 30), rng.randint(0, 40), rng.randint(0, 25)
    form = rng.randrange(16)
    if form == 0:
        return f"{major}.{minor}.{patch}"
    if form == 1:
        return f"v{major}.{minor}.{patch}"
    if form == 2:
        return f"{major}.{minor}"
    if form == 3:
        return f"v{major}.{minor}"
    if form == 4:
        return f"{major}.{minor}.{patch}-{rng.choice(PRERELEASE)}.{rng.randint(1, 9)}"
    if form == 5:
        return f"{major}.{minor}.{patch}-{rng.choice(PRERELEASE)}{rng.randint(1, 5)}"
    if form == 6:
        return f"{rng.randint(2018, 2026)}.{rng.randint(1, 12)}"
    if form == 7:
        return str(rng.randint(2, 130))
    if form == 8:
        return f"{major}.{minor}.{patch}+build.{rng.randint(1, 999)}"
    if form == 9:
        return f"R{rng.randint(2015, 2026)}{rng.choice('ab')}"
    if form == 10:
        return f"{rng.randint(2, 3)}.{rng.randint(8, 14)}.0{rng.choice(['a', 'b', 'rc'])}{rng.randint(1, 6)}"
    if form == 11:
        return f"{rng.randint(10, 24)}.{rng.choice(['04', '10'])}"
    if form == 12:
        return f"{major}.{minor}.{patch}.{rng.randint(1, 9999)}"
    if form == 13:
        return f"v{major}"
    if form == 14:
        return f"{major}.{minor}.x"
    return f"{major}.{minor}.{patch}-{rng.choice(['lts', 'hotfix', 'patch'])}{rng.randint(1, 3)}"


PEOPLE = ["José", "Zoë", "Ana", "Mikko", "Chloé", "Björn", "Priya", "Wei", "Olu", "Søren", "Dmitri", "Aisha"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FEATURES = ["the query planner", "TLS session resumption", "the plugin API", "dark mode", "the sync engine",
            "memory usage on startup", "the login flow", "IPv6 support", "the scheduler", "hot reload",
            "logging of failed requests", "the settings dialog", "HTTP/3 support", "the CSV importer"]
SYMPTOMS = ["crashes on launch", "hangs when the disk is full", "leaks memory under load",
            "fails to start", "drops connections after an hour", "shows a blank window",
            "segfaults when opening large files", "rejects valid certificates", "uses 100% CPU"]


def filler(name: str, rng: random.Random) -> str:
    """Values for the slots that hold no entity: the distractors."""
    if name == "N":
        return str(rng.randint(2, 480))
    if name == "PCT":
        return f"{rng.randint(3, 95)}%"
    if name == "PORT":
        return str(rng.choice([80, 443, 5432, 6379, 8080, 8443, 9090, 27017]))
    if name == "ISSUE":
        return f"#{rng.randint(100, 99999)}"
    if name == "CVE":
        return f"CVE-{rng.randint(2019, 2026)}-{rng.randint(1000, 49999)}"
    if name == "DATE":
        return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(2021, 2026)}"
    if name == "DAY":
        return rng.choice(DAYS)
    if name == "MONTH":
        return rng.choice(MONTHS)
    if name == "WHO":
        return rng.choice(PEOPLE)
    if name == "FEATURE":
        return rng.choice(FEATURES)
    if name == "SYMPTOM":
        return rng.choice(SYMPTOMS)
    if name == "HOURS":
        return str(rng.randint(2, 72))
    raise KeyError(name)


# {P}, {P2}: products; {V}, {V2}, {V3}: versions; other slots: distractors (see `filler`).
TEMPLATES = [
    # release notes
    "{P} {V} is now available.",
    "We are pleased to announce the release of {P} {V}.",
    "{P} {V} has been released with improvements to {FEATURE}.",
    "Today we shipped {P} {V}, which fixes {N} bugs.",
    "{P} {V} brings {FEATURE} and {N} smaller fixes.",
    "The {P} team released version {V} on {DATE}.",
    "Release {V} of {P} is out now",
    "{V} of {P} lands with faster startup ({PCT} quicker on our benchmarks).",
    "Announcing {P} {V}: a long-term support release.",
    "{P} {V} is the first release candidate for the next major version.",
    "Download {P} {V} from the usual mirrors.",
    "{P} {V} ships today and replaces {V2}.",
    "Changes in {P} {V} since {V2}: {N} commits from {N} contributors.",
    "This is a security release: {P} {V} addresses {CVE}.",
    "{P} {V} is a maintenance release; users of {V2} should upgrade.",
    "Highlights of {P} {V} include {FEATURE}.",
    "{P} reaches {V} after {N} months of development.",
    "Thanks to {WHO} and {WHO} for their work on {P} {V}!",
    "{P} {V} drops support for {P2} {V2}.",
    "With {P} {V}, {FEATURE} is enabled by default.",
    "{P} {V} release notes",
    "New in {P} {V}: {FEATURE}",
    "{P} {V} (released {DATE})",
    "The {V} release of {P} is available for download",
    # changelog lines
    "Bump {P} from {V} to {V2}",
    "Bump {P} from {V} to {V2} in /frontend",
    "chore(deps): update {P} to {V}",
    "fix: pin {P} to {V} until {ISSUE} is resolved",
    "Upgrade {P} to {V} and {P2} to {V2}",
    "Updated bundled {P} to {V}.",
    "- Require {P} {V} or newer",
    "* Fixed a crash when {P} {V} is used with {P2}",
    "build: drop {P} {V} from the CI matrix",
    "Revert \"Update {P} to {V}\"",
    "deps: {P} {V} -> {V2}",
    "Set minimum {P} version to {V} (see {ISSUE})",
    "Merged pull request {ISSUE}: support {P} {V}",
    "Downgrade {P} to {V} because {V2} {SYMPTOM}",
    "ci: test against {P} {V}, {V2} and {V3}",
    "Add {P} {V} to the supported platforms list",
    # support tickets and bug reports
    "After upgrading to {P} {V}, the app {SYMPTOM}.",
    "{P} {V} {SYMPTOM} on my laptop.",
    "Since {V} {P} {SYMPTOM}, {V2} was fine.",
    "Hi, I am running {P} {V} on {P2} {V2} and it {SYMPTOM}.",
    "Is {P} {V} compatible with {P2} {V2}?",
    "Our build broke when {P} moved from {V} to {V2}.",
    "The installer for {P} {V} {SYMPTOM} on {P2}.",
    "Steps to reproduce: install {P} {V}, open {FEATURE}, wait {HOURS} hours.",
    "I still see this with {P} {V}",
    "Can't connect to port {PORT} after updating {P} to {V}",
    "Ticket {ISSUE}: {P} {SYMPTOM} since version {V}",
    "Which version of {P} fixed {CVE}? We are on {V}.",
    "Rolling back to {P} {V} solved it for us.",
    "{P} keeps asking me to update to {V} every {DAY}.",
    "Works on {P} {V} but not on {V2}.",
    "Confirmed on {P} {V} and {P2} {V2}, {WHO} has a patch.",
    "environment: {P} {V}, {P2} {V2}",
    "Error only happens with {P} {V}",
    "my {P} is on {V}, should I wait for {V2}?",
    # security advisories
    "{CVE} affects {P} versions before {V}.",
    "A heap overflow in {P} {V} allows remote code execution ({CVE}).",
    "Upgrade {P} to {V} or later to fix {CVE}.",
    "{P} {V} and earlier are vulnerable; {V2} is patched.",
    "Advisory: {P} through {V} mishandles {FEATURE}.",
    "Patched versions: {P} {V}, {V2} and {V3}.",
    # upgrade and install guides
    "To install {P} {V}, run the installer and restart.",
    "You need {P} {V} or newer to build this project.",
    "Requires {P} >= {V} and {P2} >= {V2}.",
    "Before upgrading to {P} {V}, back up your data.",
    "Migrating from {P} {V} to {V2} takes about {HOURS} hours on a large database.",
    "This guide assumes {P} {V} on {P2} {V2}.",
    "Tested with {P} {V}.",
    "{P} {V} is end-of-life as of {DATE}.",
    "Support for {P} {V} ends in {MONTH}.",
    "Set {P} to {V} in your configuration and restart the service on port {PORT}.",
    "If you are on {P} {V}, skip directly to {V2}.",
    "The minimum supported version of {P} is now {V}.",
    "Use {P} {V}; older releases lack {FEATURE}.",
    # chat, social, news
    "{P} {V} just dropped 🎉",
    "anyone tried {P} {V} yet?",
    "{P} {V} is so much faster, {PCT} less memory for us",
    "Finally upgraded everything to {P} {V} this {DAY}.",
    "{WHO} says {P} {V} fixed the flaky tests.",
    "Big week: {P} {V} and {P2} {V2} both shipped.",
    "Reminder: the {P} {V} upgrade happens {DAY} at 10:00.",
    "Is it worth moving to {P} {V}?",
    "We benchmarked {P} {V} against {P2} {V2}.",
    "{P} {V} vs {V2}: {PCT} faster builds.",
    # compatibility and requirements
    "{P} {V} supports {P2} {V2} through {V3}.",
    "Compatible with {P} {V} and later.",
    "Not compatible with {P} {V}.",
    "Officially supported: {P} {V}, {P2} {V2}.",
    "{P} {V} requires {P2} {V2} or above.",
    "Built against {P} {V}",
    "The bindings need {P} {V}.",
    "The plugin works on {P} {V}",
    # non-English
    "{P} {V} est disponible dès aujourd'hui.",
    "Mise à jour de {P} vers la version {V}.",
    "{P} {V} ist ab sofort verfügbar.",
    "Bitte auf {P} {V} aktualisieren.",
    "Ya está disponible {P} {V}.",
    "Actualizamos {P} a la versión {V} el {DAY}.",
    # no entity at all
    "The release was delayed by {N} days.",
    "We fixed {N} bugs this month.",
    "Thanks to {WHO} for the review!",
    "Please restart the service after the update.",
    "Memory usage dropped by {PCT}.",
    "The server listens on port {PORT}.",
    "See issue {ISSUE} for details.",
    "This change improves {FEATURE}.",
    "Our next planning meeting is on {DAY}.",
    "The maintenance window starts on {DATE}.",
    "{CVE} was reported by {WHO}.",
    "Downtime lasted {HOURS} hours.",
    "Backups now run every {N} minutes.",
    "The app {SYMPTOM} when the network is down.",
    "Merci à {WHO} pour la correction !",
    "No breaking changes in this release.",
    "Please update your bookmarks.",
    "Tests pass on all platforms.",
]

# What each template is about, for the multi-label `release-topics` model: a sentence
# may be about several topics or none. Letters by template index, in TEMPLATES order:
# d dependency, p problem, r release, s security, u upgrade; "-" for none.
TOPICS = ["dependency", "problem", "release", "security", "upgrade"]
_TOPIC_LETTERS = {"d": "dependency", "p": "problem", "r": "release", "s": "security", "u": "upgrade"}
_TEMPLATE_TOPICS = (
    "r r r r r r r r r r r r r rs ru r r r r r r r r r "  # 0-23 release notes
    "d d d dp du d d p d d d d d dp d d "  # 24-39 changelog lines
    "pu p p p u pd p p p pu p s p u p p p p u "  # 40-58 tickets
    "s s su s s s "  # 59-64 advisories
    "u d d u u u d u u u u d u "  # 65-77 install and upgrade guides
    "r r r u r r u u r r "  # 78-87 chat
    "d d d d d d d d "  # 88-95 compatibility
    "r u r u r u "  # 96-101 other languages
    "r p - u - - - - - - s p - p - r - -"  # 102-119 no entity
).split()
TEMPLATE_TOPICS = [sorted(_TOPIC_LETTERS[c] for c in letters if c != "-") for letters in _TEMPLATE_TOPICS]

SLOT = re.compile(r"\{([A-Z0-9]+)\}")
ENTITY_SLOTS = {"P": "PRODUCT", "P2": "PRODUCT", "V": "VERSION", "V2": "VERSION", "V3": "VERSION"}


@dataclass(frozen=True)
class Sentence:
    text: str
    entities: list[dict]  # {"type", "start", "end", "text"}: character spans
    template: int

    @property
    def topics(self) -> list[str]:
        return TEMPLATE_TOPICS[self.template]


def fill(template_id: int, products: list[str], rng: random.Random) -> Sentence:
    """One sentence from template `template_id`, its entity spans in characters."""
    template = TEMPLATES[template_id]
    chosen_products = rng.sample(products, 2)
    text = ""
    entities = []
    position = 0
    for match in SLOT.finditer(template):
        text += template[position : match.start()]
        slot = match.group(1)
        if slot in ("P", "P2"):
            value = chosen_products[0 if slot == "P" else 1]
        elif slot in ("V", "V2", "V3"):
            value = version(rng)
        else:
            value = filler(slot, rng)
        if slot in ENTITY_SLOTS:
            entities.append({"type": ENTITY_SLOTS[slot], "start": len(text), "end": len(text) + len(value), "text": value})
        text += value
        position = match.end()
    text += template[position:]
    # Some people write in lower case only (tickets, chat); the tokenizer is uncased, so
    # this varies only what a reader sees, and the spans stay valid.
    if rng.random() < 0.1:
        text = text.lower()
        entities = [{**e, "text": text[e["start"] : e["end"]]} for e in entities]
    return Sentence(text, entities, template_id)


def generate(seed: int, test_fraction: float, validation_fraction: float) -> dict[str, list[Sentence]]:
    """The three splits. Test sentences use only held-out templates and products."""
    rng = random.Random(seed)
    template_ids = list(range(len(TEMPLATES)))
    rng.shuffle(template_ids)
    products = sorted(PRODUCTS)
    rng.shuffle(products)
    held_templates = template_ids[: max(1, round(len(template_ids) * test_fraction))]
    seen_templates = template_ids[len(held_templates) :]
    held_products = products[: max(2, round(len(products) * test_fraction))]
    seen_products = products[len(held_products) :]

    test_count = round(SENTENCES * test_fraction)
    validation_count = round(SENTENCES * validation_fraction)
    train_count = SENTENCES - test_count - validation_count

    def draw(count: int, templates: list[int], pool: list[str]) -> list[Sentence]:
        drawn: list[Sentence] = []
        seen: set[str] = set()
        while len(drawn) < count:
            sentence = fill(rng.choice(templates), pool, rng)
            if sentence.text not in seen:  # a duplicate would weigh one sentence twice
                seen.add(sentence.text)
                drawn.append(sentence)
        return drawn

    train = draw(train_count, seen_templates, seen_products)
    train_texts = {s.text for s in train}
    validation = [s for s in draw(validation_count * 2, seen_templates, seen_products) if s.text not in train_texts]
    return {
        "train": train,
        "validation": validation[:validation_count],
        "test": draw(test_count, held_templates, held_products),
    }


def write_splits(directory: Path, splits: dict[str, list[Sentence]]) -> None:
    """One JSON line per sentence: {"text", "entities": [{"type","start","end","text"}], "topics", "template"}."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, sentences in splits.items():
        tmp = directory / f"{name}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as out:
            for s in sentences:
                row = {"text": s.text, "entities": s.entities, "topics": s.topics, "template": s.template}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(directory / f"{name}.jsonl")


def token_labels(offsets: list[tuple[int, int]], special: list[int], entities: list[dict]) -> list[int]:
    """BIO label ids per token from character spans; -100 (ignored by the loss) on special tokens.

    A token starting where an entity starts is B-, a token starting inside it is I-.
    """
    labels = []
    for (start, end), is_special in zip(offsets, special, strict=True):
        if is_special or start == end:
            labels.append(-100)
            continue
        label = "O"
        for entity in entities:
            if entity["start"] <= start < entity["end"]:
                label = ("B-" if start == entity["start"] else "I-") + entity["type"]
                break
        labels.append(LABELS.index(label))
    return labels


def entity_f1(predicted: list[list[tuple[str, int, int]]], gold: list[list[tuple[str, int, int]]]) -> dict:
    """Entity-level precision, recall and F1: an entity counts only with its exact type and span."""
    true_positive = sum(len(set(p) & set(g)) for p, g in zip(predicted, gold, strict=True))
    predicted_count = sum(len(set(p)) for p in predicted)
    gold_count = sum(len(set(g)) for g in gold)
    precision = true_positive / predicted_count if predicted_count else 0.0
    recall = true_positive / gold_count if gold_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_type = {}
    for kind in ENTITY_TYPES:
        tp = sum(len({e for e in p if e[0] == kind} & {e for e in g if e[0] == kind}) for p, g in zip(predicted, gold, strict=True))
        pc = sum(1 for p in predicted for e in set(p) if e[0] == kind)
        gc = sum(1 for g in gold for e in set(g) if e[0] == kind)
        pr, rc = (tp / pc if pc else 0.0), (tp / gc if gc else 0.0)
        per_type[kind] = {"precision": pr, "recall": rc, "f1": 2 * pr * rc / (pr + rc) if pr + rc else 0.0, "support": gc}
    return {"precision": precision, "recall": recall, "f1": f1, "per_type": per_type, "entities": gold_count}


def spans_of(pipeline_output: list[dict]) -> list[tuple[str, int, int]]:
    """(type, start, end) of a grouped pipeline answer (`aggregation_strategy="simple"`)."""
    return [(e["entity_group"], int(e["start"]), int(e["end"])) for e in pipeline_output]


def gold_spans(entities: list[dict]) -> list[tuple[str, int, int]]:
    return [(e["type"], e["start"], e["end"]) for e in entities]


def read_split(directory: Path, name: str) -> list[dict]:
    with (directory / f"{name}.jsonl").open(encoding="utf-8") as rows:
        return [json.loads(line) for line in rows]
