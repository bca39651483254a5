//! The Python steps of one model: the teacher's (train, export, optimize, golden) and, for
//! a spec with `[distill]`, its student's (distill, student-export, student-optimize,
//! student-golden), which run after them; what each reads and writes, its cache key, and
//! its run through the venv.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use modelcrate_schema::Task;

use crate::Select;
use crate::cache::{Key, KeyBuilder, Output};
use crate::paths::Paths;
use crate::pipeline::{Environment, selected, setup, timed};
use crate::python::WEIGHTS_LOCK;
use crate::python_host::StepRequest;
use crate::spec::ModelSpec;
use crate::step::Step;

/// What the export step writes into `onnx/` (the optimize step adds variants beside them).
const EXPORTED_FILES: [&str; 7] = [
    "model.onnx",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "signature.json",
];

/// What the export step adds for a SetFit model: its scikit-learn head.
const SETFIT_HEAD_FILES: [&str; 2] = ["head.onnx", "head_signature.json"];

/// What the optimize step may write into `onnx/`, besides `variants.json` (O3 only where
/// the spec asks for it, the selective INT8 for sentence-embedding models that ask).
const VARIANT_FILES: [&str; 7] = [
    "model.O1.onnx",
    "model.O2.onnx",
    "model.O3.onnx",
    "model.int8.onnx",
    "model.O2.int8.onnx",
    "model.int8-static.onnx",
    "model.int8-selective.onnx",
];

/// What the student-export step writes into `onnx/`.
const STUDENT_EXPORT: &str = "model.student.onnx";

/// What the student-optimize step writes into `onnx/`: its variants and their manifest.
const STUDENT_VARIANT_FILES: [&str; 5] = [
    "model.student.O2.onnx",
    "model.student.int8.onnx",
    "model.student.O2.int8.onnx",
    "model.student.int8-selective.onnx",
    "variants.student.json",
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PyStep {
    Train,
    Export,
    Optimize,
    Golden,
    /// A smaller student of the trained model, for a spec with `[distill]`.
    Distill,
    /// The student's export, beside the teacher's.
    StudentExport,
    /// The student's variants, listed in `variants.student.json`.
    StudentOptimize,
    /// The student's PyTorch reference, `student/reference.json`.
    StudentGolden,
}

impl PyStep {
    /// The teacher's steps, in the order each reads what the one before wrote: what a
    /// model needs to serve.
    pub const TEACHER: [Self; 4] = [Self::Train, Self::Export, Self::Optimize, Self::Golden];
    /// A distilled student's steps, run after the teacher's, in order.
    pub const STUDENT: [Self; 4] = [
        Self::Distill,
        Self::StudentExport,
        Self::StudentOptimize,
        Self::StudentGolden,
    ];
    /// Every step: the teacher's, then the student's.
    pub const IN_ORDER: [Self; 8] = [
        Self::Train,
        Self::Export,
        Self::Optimize,
        Self::Golden,
        Self::Distill,
        Self::StudentExport,
        Self::StudentOptimize,
        Self::StudentGolden,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Export => "export",
            Self::Optimize => "optimize",
            Self::Golden => "golden",
            Self::Distill => "distill",
            Self::StudentExport => "student-export",
            Self::StudentOptimize => "student-optimize",
            Self::StudentGolden => "student-golden",
        }
    }

    /// Whether the step is one of a distilled student's: it reads `[distill]`, which the
    /// teacher's steps do not.
    pub fn is_student(self) -> bool {
        Self::STUDENT.contains(&self)
    }

    /// Whether the step has work for `spec`: a student's steps only with `[distill]`.
    pub fn applies_to(self, spec: &ModelSpec) -> bool {
        !self.is_student() || spec.distill.is_some()
    }

    /// The Python module that runs the step and, when that module holds several steps,
    /// the step's name in it: an image classifier's steps are all in `vision`, a detector's
    /// in `detect`, an image–text model's in `align`, a
    /// question-answering model's train, optimize and golden in `qa`, a student's export,
    /// optimize and golden in `student`.
    fn module(self, spec: &ModelSpec) -> (&'static str, Option<&'static str>) {
        match self {
            Self::StudentExport => ("student", Some("export")),
            Self::StudentOptimize => ("student", Some("optimize")),
            Self::StudentGolden => ("student", Some("golden")),
            _ if spec.task == Task::ObjectDetection => ("detect", Some(self.name())),
            _ if spec.task == Task::ZeroShotImageClassification => ("align", Some(self.name())),
            _ if spec.is_image() => ("vision", Some(self.name())),
            // A question-answering model's train, optimize and golden steps are `qa`'s;
            // its export is every text model's.
            Self::Train | Self::Optimize | Self::Golden if spec.task == Task::QuestionAnswering => {
                ("qa", Some(self.name()))
            }
            _ => (self.name(), None),
        }
    }

    /// `python -m modelcrate.<module> --spec FILE`, with `--step STEP` when the module
    /// holds several steps; its stderr into `log`.
    fn request<'a>(self, paths: &Paths, spec: &ModelSpec, spec_json: &Path, log: &'a Path) -> StepRequest<'a> {
        let (module, step) = self.module(spec);
        let mut args = vec!["--spec".to_string(), paths.relative(spec_json).display().to_string()];
        if let Some(step) = step {
            args.extend(["--step".to_string(), step.to_string()]);
        }
        StepRequest {
            what: format!("step `{}` of model `{}`", self.name(), spec.name),
            module: format!("modelcrate.{module}"),
            args,
            log,
        }
    }

    /// (inputs, outputs) whose hashes decide whether the step must run.
    fn io(self, paths: &Paths, spec: &ModelSpec) -> (Vec<PathBuf>, Vec<PathBuf>) {
        if spec.is_image() {
            return self.image_io(paths, spec);
        }
        let art = paths.artifact(&spec.name);
        let onnx = paths.onnx(&spec.name);
        let golden = paths.golden(&spec.name);
        // A SetFit body is a sentence-embedding model: both export `pooling.json`.
        let embeddings = spec.task == Task::FeatureExtraction || spec.is_setfit();
        // What the static INT8 is calibrated on and a sentence-embedding model's selective
        // INT8 searches on, with what (`quantize.py`, `selective.py`).
        let pooling = (spec.task == Task::FeatureExtraction).then(|| onnx.join("pooling.json"));
        let calibration = [art.join("data/train.jsonl"), onnx.join("tokenizer.json")]
            .into_iter()
            .chain(pooling);
        // The modules a task (or SetFit) adds to every step's code.
        let task_modules: &[&str] = match spec.task {
            _ if spec.is_setfit() => &["fewshot", "embed"],
            Task::FeatureExtraction => &["embed"],
            Task::TokenClassification => &["ner"],
            Task::QuestionAnswering => &["qa", "release_qa"],
            _ => &[],
        };
        let code = |modules: &[&str]| -> Vec<PathBuf> {
            let mut files: Vec<PathBuf> = modules
                .iter()
                .chain(task_modules)
                .copied()
                .map(|m| paths.root.join(format!("python/modelcrate/{m}.py")))
                .collect();
            files.push(paths.root.join("python/modelcrate/__init__.py"));
            files.push(paths.root.join("python/requirements.lock"));
            files.push(art.join("spec.json"));
            files
        };
        match self {
            Self::Train => (
                code(&["spec", "bbc", "release_notes", "train"]),
                vec![art.join("checkpoint"), art.join("metrics.json"), art.join("data")],
            ),
            Self::Export => {
                let mut inputs = code(&["spec", "export"]);
                inputs.push(art.join("checkpoint"));
                let pooling = embeddings.then_some("pooling.json");
                let head = spec.is_setfit().then_some(SETFIT_HEAD_FILES).into_iter().flatten();
                let outputs = EXPORTED_FILES
                    .iter()
                    .copied()
                    .chain(pooling)
                    .chain(head)
                    .map(|f| onnx.join(f));
                (inputs, outputs.collect())
            }
            Self::Optimize => {
                let mut inputs = code(&["spec", "optimize", "quantize", "selective"]);
                inputs.extend([onnx.join("model.onnx"), onnx.join("config.json")]);
                inputs.extend(calibration);
                let mut outputs: Vec<PathBuf> = VARIANT_FILES.into_iter().map(|f| onnx.join(f)).collect();
                outputs.push(onnx.join("variants.json"));
                (inputs, outputs)
            }
            Self::Golden => {
                let mut inputs = code(&["spec", "bbc", "release_notes", "train", "golden"]);
                inputs.extend([
                    art.join("checkpoint"),
                    art.join("data/test.jsonl"),
                    golden.join("inputs.json"),
                ]);
                (inputs, vec![golden.join("reference.json")])
            }
            Self::Distill => {
                let mut inputs = code(&["spec", "fit", "bbc", "release_notes", "train", "distill"]);
                inputs.extend([art.join("checkpoint"), art.join("data")]);
                let student = art.join("student");
                (inputs, vec![student.join("checkpoint"), student.join("metrics.json")])
            }
            Self::StudentExport => {
                let mut inputs = code(STUDENT_MODULES);
                inputs.extend([art.join("student/checkpoint"), onnx.join("signature.json")]);
                // What the student's pooling must equal.
                inputs.extend(embeddings.then(|| onnx.join("pooling.json")));
                (inputs, vec![onnx.join(STUDENT_EXPORT)])
            }
            Self::StudentOptimize => {
                let mut inputs = code(STUDENT_MODULES);
                inputs.extend([onnx.join(STUDENT_EXPORT), onnx.join("config.json")]);
                inputs.extend(calibration);
                (inputs, STUDENT_VARIANT_FILES.iter().map(|f| onnx.join(f)).collect())
            }
            Self::StudentGolden => {
                let mut inputs = code(STUDENT_MODULES);
                inputs.extend([
                    art.join("student/checkpoint"),
                    art.join("data/test.jsonl"),
                    golden.join("inputs.json"),
                    golden.join("reference.json"),
                ]);
                (inputs, vec![art.join("student/reference.json")])
            }
        }
    }
}

/// The modules a student's export, optimize and golden steps run: `student` and what it
/// imports.
const STUDENT_MODULES: &[&str] = &[
    "spec",
    "fit",
    "bbc",
    "release_notes",
    "train",
    "export",
    "optimize",
    "golden",
    "quantize",
    "selective",
    "student",
];

impl PyStep {
    /// An image model's steps: the `vision` module (a detector's `detect`, an image–text
    /// model's `align`, which import `vision`) and what they borrow from the others.
    fn image_io(self, paths: &Paths, spec: &ModelSpec) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let art = paths.artifact(&spec.name);
        let onnx = paths.onnx(&spec.name);
        let golden = paths.golden(&spec.name);
        let detector = spec.task == Task::ObjectDetection;
        let image_text = spec.task == Task::ZeroShotImageClassification;
        let task_modules: &[&str] = match spec.task {
            Task::ObjectDetection => &["detect", "detector", "scenes", "quantize"],
            Task::ZeroShotImageClassification => &["align", "captions", "dual_encoder", "scenes", "quantize"],
            _ => &[],
        };
        // The base weights only some models read are keyed by those models' steps alone.
        let weights = reads_weights_lock(paths, spec).then(|| paths.root.join(WEIGHTS_LOCK));
        let code = |modules: &[&str]| -> Vec<PathBuf> {
            let mut files: Vec<PathBuf> = ["__init__", "spec", "vision"]
                .iter()
                .chain(task_modules)
                .chain(modules)
                .map(|m| paths.root.join(format!("python/modelcrate/{m}.py")))
                .collect();
            files.extend([paths.root.join("python/requirements.lock"), art.join("spec.json")]);
            files.extend(weights.clone());
            files
        };
        match self {
            // Image models have no student (spec validation refuses `[distill]` there), so
            // `applies_to` keeps a student's steps from them.
            Self::Train | Self::Distill | Self::StudentExport | Self::StudentOptimize | Self::StudentGolden => (
                code(&["fit"]),
                vec![art.join("checkpoint"), art.join("metrics.json"), art.join("data")],
            ),
            Self::Export => {
                let mut inputs = code(&["export"]);
                inputs.push(art.join("checkpoint"));
                let files: &[&str] = if image_text {
                    &IMAGE_TEXT_EXPORTED_FILES
                } else {
                    &IMAGE_EXPORTED_FILES
                };
                (inputs, files.iter().map(|f| onnx.join(f)).collect())
            }
            Self::Optimize => {
                // `optimize` lends `describe` and `made`; `quantize` the static INT8.
                let mut inputs = code(&["optimize", "quantize", "selective"]);
                inputs.push(onnx.join("model.onnx"));
                // A classifier calibrates on its split's images; a detector and an image–text
                // model on images drawn from the spec, which is an input already.
                if !detector && !image_text {
                    inputs.push(art.join("data/split.json"));
                }
                let mut outputs: Vec<PathBuf> = ["model.O1.onnx", "model.O2.onnx", "model.int8.onnx", "variants.json"]
                    .iter()
                    .map(|f| onnx.join(f))
                    .collect();
                if image_text {
                    // The text tower's beside each image tower's (`text_model.O1.onnx`, …).
                    inputs.push(onnx.join("text_model.onnx"));
                    outputs.extend(
                        ["text_model.O1.onnx", "text_model.O2.onnx", "text_model.int8.onnx"].map(|f| onnx.join(f)),
                    );
                }
                (inputs, outputs)
            }
            Self::Golden => {
                // `golden` brings `train` and what it reads, for the checkpoint digest.
                let mut inputs = code(&["golden", "train", "bbc", "release_notes", "fit"]);
                inputs.extend([
                    art.join("checkpoint"),
                    art.join("data"),
                    golden.join("inputs.json"),
                    golden.join("images"),
                ]);
                let mut outputs = vec![golden.join("reference.json"), art.join("golden-pixels")];
                if detector {
                    outputs.push(art.join("test-detections.json"));
                }
                (inputs, outputs)
            }
        }
    }
}

/// What an image model's export writes into `onnx/`.
const IMAGE_EXPORTED_FILES: [&str; 4] = [
    "model.onnx",
    "config.json",
    "preprocessor_config.json",
    "signature.json",
];

/// What an image–text model's export writes into `onnx/`: both towers, their signatures
/// and the text tower's tokenizer.
const IMAGE_TEXT_EXPORTED_FILES: [&str; 10] = [
    "model.onnx",
    "text_model.onnx",
    "config.json",
    "preprocessor_config.json",
    "signature.json",
    "text_signature.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
];

/// Whether the spec's base package is one of `python/weights.lock`'s (a line `name==…`).
fn reads_weights_lock(paths: &Paths, spec: &ModelSpec) -> bool {
    let pinned = format!("{}==", spec.base.package);
    std::fs::read_to_string(paths.root.join(WEIGHTS_LOCK))
        .unwrap_or_default()
        .lines()
        .any(|line| line.trim().starts_with(&pinned))
}

/// Writes `artifacts/<name>/spec.json` for the Python steps, only when it changed.
fn write_resolved_spec(paths: &Paths, spec: &ModelSpec) -> Result<PathBuf> {
    let art = paths.artifact(&spec.name);
    std::fs::create_dir_all(&art).with_context(|| format!("cannot create {}", art.display()))?;
    let json = spec.resolved_json(&paths.relative(&art), &paths.relative(&paths.golden(&spec.name)))?;
    let path = art.join("spec.json");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(json.as_str()) {
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}

/// The step's key: its code, the lock, the resolved spec (written here first) and the
/// upstream artifacts it reads, each under a label that does not depend on where this
/// clone or its artifacts are. Its key holds only the sections of the spec the step reads:
/// a teacher's step never reads `[distill]` and only the optimize step reads `[optimize]`,
/// so tuning the student re-runs only the student's steps, and asking for O3 only optimize.
pub fn key(paths: &Paths, spec: &ModelSpec, step: PyStep) -> Result<Key> {
    let spec_json = write_resolved_spec(paths, spec)?;
    let (inputs, _) = step.io(paths, spec);
    let mut key = KeyBuilder::new(step.name());
    for input in &with_imports(paths, &inputs)? {
        let label = label(paths, &spec.name, input);
        key = if *input == spec_json {
            let art = paths.relative(&paths.artifact(&spec.name));
            let golden = paths.relative(&paths.golden(&spec.name));
            let read = spec.json_read_by(&art, &golden, step.is_student(), step == PyStep::Optimize)?;
            key.file_text(&label, &read)
        } else {
            key.path(&label, input)?
        };
    }
    Ok(key.finish())
}

/// `inputs` with every module of the package that their Python modules import at their
/// top level, transitively (`from . import bbc`, `from .fit import fit`), so that a
/// module a step runs through can't be missing from its key. Imports inside functions
/// are the task dispatch (`train` hands an NER model to `ner`): `io` names those by task.
fn with_imports(paths: &Paths, inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let package = paths.root.join("python/modelcrate");
    let mut all: Vec<PathBuf> = inputs.to_vec();
    let mut queue: Vec<PathBuf> = inputs.iter().filter(|p| p.starts_with(&package)).cloned().collect();
    while let Some(module) = queue.pop() {
        let text = std::fs::read_to_string(&module).with_context(|| format!("cannot read {}", module.display()))?;
        for name in top_level_imports(&text) {
            let file = package.join(format!("{name}.py"));
            if file.is_file() && !all.contains(&file) {
                all.push(file.clone());
                queue.push(file);
            }
        }
    }
    Ok(all)
}

/// The package's modules a Python file imports at its top level (relative imports, or
/// `modelcrate.…`); indented imports are left out.
fn top_level_imports(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let mut statement = line.to_string();
        // `from . import (a,\n    b)` spans lines.
        if statement.contains('(') && !statement.contains(')') {
            for next in lines.by_ref() {
                statement.push(' ');
                statement.push_str(next);
                if next.contains(')') {
                    break;
                }
            }
        }
        let statement = statement.replace(['(', ')'], " ");
        let words: Vec<&str> = statement.split_whitespace().collect();
        let module = |path: &str| -> Option<String> {
            let rest = path.strip_prefix('.').or_else(|| path.strip_prefix("modelcrate."))?;
            rest.split('.').next().filter(|m| !m.is_empty()).map(str::to_string)
        };
        match words.as_slice() {
            // Every word after `import` (an alias too: only names of the package's files count).
            ["from", "." | "modelcrate", "import", imported @ ..] => names.extend(
                imported
                    .iter()
                    .flat_map(|w| w.split(','))
                    .filter(|w| !w.is_empty() && *w != "as")
                    .map(str::to_string),
            ),
            ["from", path, "import", ..] => names.extend(module(path)),
            ["import", path, ..] => names.extend(module(path)),
            _ => {}
        }
    }
    names
}

/// A path's name in keys and cache entries: `artifact/…` under the model's artifacts,
/// `golden/…` under its golden folder, else relative to the root.
pub fn label(paths: &Paths, model: &str, path: &Path) -> String {
    let (prefix, rest) = if let Ok(rest) = path.strip_prefix(paths.artifact(model)) {
        ("artifact/", rest)
    } else if let Ok(rest) = path.strip_prefix(paths.golden(model)) {
        ("golden/", rest)
    } else {
        ("", path.strip_prefix(&paths.root).unwrap_or(path))
    };
    format!("{prefix}{}", rest.display())
}

/// Runs one Python step of one model, unless its stamp is fresh or the cache has it.
pub fn run(paths: &Paths, environment: &Environment, spec: &ModelSpec, step: PyStep, force: bool) -> Result<()> {
    let key = key(paths, spec, step)?;
    let spec_json = paths.artifact(&spec.name).join("spec.json");
    let (_, outputs) = step.io(paths, spec);
    let stamps = paths.artifact(&spec.name).join(".stamps");
    let log = paths
        .artifact(&spec.name)
        .join("logs")
        .join(format!("{}.log", step.name()));
    let step_run = Step {
        name: step.name(),
        model: &spec.name,
        key,
        outputs: outputs
            .into_iter()
            .map(|path| Output::new(label(paths, &spec.name, &path), path))
            .collect(),
        stamps: &stamps,
    };
    timed(&format!("{} {}", step.name(), spec.name), || {
        let outcome = environment.runner(paths).run(&step_run, force, || {
            environment.python.run(&step.request(paths, spec, &spec_json, &log))
        })?;
        outcome.report();
        Ok(())
    })
}

/// Runs `steps` of one model, in order, those that apply to it.
pub fn run_model(
    paths: &Paths,
    environment: &Environment,
    spec: &ModelSpec,
    steps: &[PyStep],
    force: bool,
) -> Result<()> {
    for &step in steps.iter().filter(|step| step.applies_to(spec)) {
        run(paths, environment, spec, step, force)?;
    }
    Ok(())
}

/// Runs `steps` for every selected model, in order.
pub fn run_all(paths: &Paths, select: &Select, steps: &[PyStep]) -> Result<()> {
    let specs = selected(paths, select)?;
    let environment = setup(paths, false)?;
    for spec in &specs {
        for &step in steps {
            if step.applies_to(spec) {
                run(paths, &environment, spec, step, select.force)?;
            } else if select.model.is_some() {
                eprintln!(
                    "    {} {}: nothing to do (no [{}] in its spec)",
                    step.name(),
                    spec.name,
                    step.name()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_imports_of_the_package_are_found_and_lazy_ones_left_to_the_task() {
        let text = "import json\nfrom . import bbc, release_notes as notes\nfrom .fit import fit\nfrom .spec import (\n    Spec,\n    write_json,\n)\nimport modelcrate.ner\nfrom torch import nn\n\ndef f():\n    from . import embed\n";
        let names = top_level_imports(text);
        for name in ["bbc", "release_notes", "fit", "spec", "ner"] {
            assert!(names.contains(&name.to_string()), "{name} in {names:?}");
        }
        assert!(!names.contains(&"embed".to_string()), "{names:?}");
        assert!(!names.contains(&"torch".to_string()), "{names:?}");
    }
}
