//! A cache that lies is worse than none: each kind of change must change the keys of
//! exactly the steps it can affect, and no others. Run on a copy of this workspace's
//! specs, Python and Rust code, with two models.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::cache::{self, Key};
use crate::paths::Paths;
use crate::python_step::{self, PyStep};
use crate::scratch::ScratchDir;
use crate::spec;
use crate::variant_check::{self, Made};

const MODELS: [&str; 2] = ["news-topic", "news-embed"];

/// What the test copies from this workspace: what the keys read (with
/// [`variant_check::RUST_SOURCES`], what every check's key reads).
const COPIED: [&str; 9] = [
    "models/news-topic.toml",
    "models/news-embed.toml",
    "python",
    "golden/news-topic/inputs.json",
    "golden/news-embed/inputs.json",
    "generated/news-topic",
    "generated/news-embed",
    "Cargo.lock",
    "Cargo.toml",
];

fn copy(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    cache::copy_tree(from, to).unwrap();
}

/// Every step's key of both models, as `model:step` (both have a distilled student: its
/// `distill` and `student-…` steps, and `student-parity` of a student's variant).
fn keys(paths: &Paths) -> Vec<(String, Key)> {
    let mut keys = Vec::new();
    for (_, spec) in spec::all(&paths.models()).unwrap() {
        for step in PyStep::IN_ORDER.into_iter().filter(|step| step.applies_to(&spec)) {
            let key = python_step::key(paths, &spec, step).unwrap();
            keys.push((format!("{}:{}", spec.name, step.name()), key));
        }
        let made = |name: &str, file: &str, student: bool| Made {
            name: name.into(),
            file: file.into(),
            kind: modelcrate_schema::VariantKind::Int8,
            kept_layers: student.then_some(3),
        };
        let (parity, measure) =
            variant_check::keys(paths, &spec.name, &made("int8", "model.int8.onnx", false)).unwrap();
        keys.push((format!("{}:parity", spec.name), parity));
        keys.push((format!("{}:measure", spec.name), measure));
        if spec.distill.is_some() {
            let student = made("student-int8", "model.student.int8.onnx", true);
            let (parity, _) = variant_check::keys(paths, &spec.name, &student).unwrap();
            keys.push((format!("{}:student-parity", spec.name), parity));
        }
    }
    keys
}

/// The steps whose keys `change` changes.
fn invalidated(paths: &Paths, change: impl FnOnce(&Path)) -> BTreeSet<String> {
    let before = keys(paths);
    change(&paths.root);
    let after = keys(paths);
    assert_eq!(before.len(), after.len());
    before
        .into_iter()
        .zip(after)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((step, _), _)| step)
        .collect()
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut content = fs::read_to_string(path).unwrap();
    content.push_str(text);
    fs::write(path, content).unwrap();
}

/// The steps that a comment appended to `file` (Python or Rust source) invalidates.
fn commented(paths: &Paths, file: &str) -> BTreeSet<String> {
    let comment = if file.ends_with(".py") {
        "\n# changed\n"
    } else {
        "\n// changed\n"
    };
    invalidated(paths, |root| append(&root.join(file), comment))
}

fn set(steps: &[&str]) -> BTreeSet<String> {
    steps.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_change_invalidates_exactly_the_steps_it_can_affect() {
    let scratch = ScratchDir::new("invalidation");
    let workspace = Paths::new();
    for part in COPIED.into_iter().chain(variant_check::RUST_SOURCES) {
        copy(&workspace.root.join(part), &scratch.join(part));
    }
    let paths = Paths::at(scratch.path());
    let python_steps = |model: &str| -> Vec<String> {
        PyStep::IN_ORDER
            .into_iter()
            .map(|step| format!("{model}:{}", step.name()))
            .collect()
    };
    // The student's export, optimize and golden steps of both models.
    let student_steps = || -> Vec<String> {
        MODELS
            .iter()
            .flat_map(|m| ["export", "optimize", "golden"].map(|s| format!("{m}:student-{s}")))
            .collect()
    };
    let checks = |models: &[&str]| -> BTreeSet<String> {
        models
            .iter()
            .flat_map(|m| ["parity", "measure", "student-parity"].map(|c| format!("{m}:{c}")))
            .collect()
    };
    assert_eq!(keys(&paths), keys(&paths), "keys are stable");

    // A spec field: that model's Python steps (its checkpoint then carries the change on).
    assert_eq!(
        invalidated(&paths, |root| edit(
            &root.join("models/news-topic.toml"),
            "epochs = 2",
            "epochs = 3"
        )),
        python_steps("news-topic").into_iter().collect()
    );
    // A `[distill]` field: the student's steps only, never the teacher's.
    let mut distill = set(&["news-topic:distill"]);
    distill.extend(["export", "optimize", "golden"].map(|s| format!("news-topic:student-{s}")));
    assert_eq!(
        invalidated(&paths, |root| edit(
            &root.join("models/news-topic.toml"),
            "temperature = 2.0",
            "temperature = 3.0"
        )),
        distill
    );
    // An `[optimize]` field: the teacher's optimize step only (its variants.json then
    // re-keys the checks).
    assert_eq!(
        invalidated(&paths, |root| append(
            &root.join("models/news-topic.toml"),
            "\n[optimize]\no3 = true\n"
        )),
        set(&["news-topic:optimize"])
    );
    // A Python step's code: that step, for every model that runs it (the student's steps
    // run through the teacher's export, optimize and golden).
    let mut export = set(&["news-embed:export", "news-topic:export"]);
    export.extend(student_steps());
    assert_eq!(commented(&paths, "python/modelcrate/export.py"), export);
    // The quantizers: every text model's variants, never its training or reference.
    let mut quantize = set(&["news-embed:optimize", "news-topic:optimize"]);
    quantize.extend(student_steps());
    assert_eq!(commented(&paths, "python/modelcrate/quantize.py"), quantize);
    // A task's module: every step of the models of that task that imports it.
    assert_eq!(
        commented(&paths, "python/modelcrate/embed.py"),
        python_steps("news-embed").into_iter().collect()
    );
    // A module a step imports at its top level (`train` imports `fit`): the steps that
    // run through it. news-embed's steps all load `embed`, which imports `fit` too.
    let mut fit: BTreeSet<String> = python_steps("news-embed").into_iter().collect();
    fit.extend(["train", "distill", "golden"].map(|s| format!("news-topic:{s}")));
    fit.extend(["export", "optimize", "golden"].map(|s| format!("news-topic:student-{s}")));
    assert_eq!(commented(&paths, "python/modelcrate/fit.py"), fit);
    // A golden input: that model's golden outputs (the student's too) and its checks
    // against them.
    let mut golden = set(&["news-topic:golden", "news-topic:student-golden"]);
    golden.extend(checks(&["news-topic"]));
    assert_eq!(
        invalidated(&paths, |root| edit(
            &root.join("golden/news-topic/inputs.json"),
            "[",
            "[\n"
        )),
        golden
    );
    // The parity code, the runtime and the schema of the files they read: every model's
    // checks, no training.
    assert_eq!(commented(&paths, "parity/src/classification.rs"), checks(&MODELS));
    assert_eq!(commented(&paths, "runtime/src/text.rs"), checks(&MODELS));
    assert_eq!(commented(&paths, "schema/src/parity.rs"), checks(&MODELS));
    // One model's generated crate: its checks only.
    assert_eq!(
        commented(&paths, "generated/news-embed/src/lib.rs"),
        checks(&["news-embed"])
    );
    // A new workspace member in Cargo.lock (a new model's crate): nothing.
    assert_eq!(
        invalidated(&paths, |root| append(
            &root.join("Cargo.lock"),
            "\n[[package]]\nname = \"new-model\"\nversion = \"0.1.0\"\n"
        )),
        set(&[])
    );
    // A registry crate's version the checks' binaries build against: every check.
    assert_eq!(
        invalidated(&paths, |root| edit(
            &root.join("Cargo.lock"),
            "name = \"ort\"\nversion = \"",
            "name = \"ort\"\nversion = \"9"
        )),
        checks(&MODELS)
    );
    // ... or its features in the workspace manifest: every check.
    assert_eq!(
        invalidated(&paths, |root| edit(
            &root.join("Cargo.toml"),
            "\"api-31\"",
            "\"api-31\", \"x\""
        )),
        checks(&MODELS)
    );
    // A crate only the server or the xtask builds against (axum; a new one in the
    // manifest): nothing.
    assert_eq!(
        invalidated(&paths, |root| edit(
            &root.join("Cargo.lock"),
            "name = \"axum\"\nversion = \"",
            "name = \"axum\"\nversion = \"9"
        )),
        set(&[])
    );
    assert_eq!(
        invalidated(&paths, |root| edit(
            &root.join("Cargo.toml"),
            "axum = \"0.8\"",
            "axum = \"0.9\"\nnew-crate = \"1\""
        )),
        set(&[])
    );
    // The Python lock (torch, onnxruntime, the data and weight packages): everything.
    let mut everything: BTreeSet<String> = MODELS.iter().flat_map(|m| python_steps(m)).collect();
    everything.extend(checks(&MODELS));
    assert_eq!(
        invalidated(&paths, |root| append(
            &root.join("python/requirements.lock"),
            "six==1.16.0\n"
        )),
        everything
    );
    // An upstream artifact: the steps that read it.
    let checkpoint = paths.artifact("news-topic").join("checkpoint");
    assert_eq!(
        invalidated(&paths, |_| copy(
            &workspace.root.join("Cargo.toml"),
            &checkpoint.join("model.safetensors")
        )),
        set(&["news-topic:distill", "news-topic:export", "news-topic:golden"])
    );
    // The student's PyTorch outputs: only the checks of the student's variants.
    let student_reference = paths.artifact("news-topic").join("student/reference.json");
    assert_eq!(
        invalidated(&paths, |_| copy(&workspace.root.join("Cargo.toml"), &student_reference)),
        set(&["news-topic:student-parity"])
    );
    let variant = paths.onnx("news-topic").join("model.int8.onnx");
    assert_eq!(
        invalidated(&paths, |_| copy(&workspace.root.join("Cargo.toml"), &variant)),
        set(&["news-topic:parity", "news-topic:measure"])
    );
}
