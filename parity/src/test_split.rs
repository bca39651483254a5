//! The held-out test split the train step wrote (`<artifacts>/<name>/data/test.jsonl`,
//! with the image files it names for an image model):
//! what `modelcrate-parity` scores accuracy on and `modelcrate-measure` times, so both
//! use realistic inputs that no model was trained on.

use std::path::Path;

use anyhow::{Context, Result};
use modelcrate_runtime::{Input, Task};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// One labelled example of a text classifier: a BBC article with its label id, or a
/// synthetic release sentence with its topics (any number: multi-label).
#[derive(Debug, Clone, Deserialize)]
pub struct TestRow {
    pub text: String,
    #[serde(default)]
    pub label_id: Option<usize>,
    #[serde(default)]
    pub topics: Option<Vec<String>>,
}

impl TestRow {
    /// The ids of the labels that apply, sorted (one for a single-label example); an error
    /// names a topic that is not among `labels`.
    pub fn label_ids(&self, labels: &[&str]) -> Result<Vec<usize>> {
        match (&self.label_id, &self.topics) {
            (Some(id), _) => Ok(vec![*id]),
            (None, Some(topics)) => {
                let mut ids = topics
                    .iter()
                    .map(|topic| {
                        labels
                            .iter()
                            .position(|label| label == topic)
                            .with_context(|| format!("topic `{topic}` is not one of the labels {labels:?}"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                ids.sort_unstable();
                Ok(ids)
            }
            (None, None) => anyhow::bail!("a test row has neither `label_id` nor `topics`"),
        }
    }
}

/// Reads the test split of a text classifier.
pub fn read(artifacts: &Path, model: &str) -> Result<Vec<TestRow>> {
    read_lines(&artifacts.join(model).join("data/test.jsonl"))
}

#[derive(Deserialize)]
struct Text {
    text: String,
}

/// The texts of the test split of any text model, whatever else its rows hold: what
/// measurement and benchmarks feed a model.
pub fn texts(artifacts: &Path, model: &str) -> Result<Vec<String>> {
    texts_of(&artifacts.join(model).join("data/test.jsonl"))
}

/// The texts of any JSON-lines file whose rows have a `text` (a split, a bench workload).
pub fn texts_of(path: &Path) -> Result<Vec<String>> {
    let rows: Vec<Text> = read_lines(path)?;
    Ok(rows.into_iter().map(|row| row.text).collect())
}

/// A held-out question of a question-answering model: its context and its gold
/// answers (none for a question the context does not answer).
#[derive(Debug, Clone, Deserialize)]
pub struct QuestionRow {
    pub question: String,
    pub context: String,
    pub answers: Vec<GoldAnswer>,
}

/// A gold answer: its text, and where it starts in the context (characters).
#[derive(Debug, Clone, Deserialize)]
pub struct GoldAnswer {
    pub text: String,
    pub start: usize,
}

/// Reads the test split of a question-answering model.
pub fn read_questions(artifacts: &Path, model: &str) -> Result<Vec<QuestionRow>> {
    read_lines(&artifacts.join(model).join("data/test.jsonl"))
}

/// A held-out image: its file (relative to the split's folder) and label id.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageRow {
    pub file: String,
    pub label_id: usize,
}

/// A held-out scene of a detector: its file and its true boxes.
#[derive(Debug, Clone, Deserialize)]
pub struct SceneRow {
    pub file: String,
    pub boxes: Vec<TrueBox>,
}

/// One object of a scene, its box in the image's pixels (far edges exclusive).
#[derive(Debug, Clone, Deserialize)]
pub struct TrueBox {
    pub label_id: usize,
    #[serde(rename = "box")]
    pub bbox: PixelEdges,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PixelEdges {
    pub xmin: f64,
    pub ymin: f64,
    pub xmax: f64,
    pub ymax: f64,
}

/// The test split of a detector, with each scene's encoded bytes.
pub fn read_scenes(artifacts: &Path, model: &str) -> Result<Vec<(SceneRow, Vec<u8>)>> {
    read_with_files(artifacts, model)
}

/// The test split of an image classifier, with each image's encoded bytes.
pub fn read_images(artifacts: &Path, model: &str) -> Result<Vec<(ImageRow, Vec<u8>)>> {
    read_with_files(artifacts, model)
}

/// Rows of `data/test.jsonl` that name a `file` under `data/`, each with its bytes.
fn read_with_files<Row: DeserializeOwned + Named>(artifacts: &Path, model: &str) -> Result<Vec<(Row, Vec<u8>)>> {
    let data = artifacts.join(model).join("data");
    let rows: Vec<Row> = read_lines(&data.join("test.jsonl"))?;
    rows.into_iter()
        .map(|row| {
            let path = data.join(row.file());
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok((row, bytes))
        })
        .collect()
}

/// A test row that names a file.
trait Named {
    fn file(&self) -> &str;
}

impl Named for ImageRow {
    fn file(&self) -> &str {
        &self.file
    }
}

impl Named for SceneRow {
    fn file(&self) -> &str {
        &self.file
    }
}

/// The test split's inputs as a model takes them: texts, encoded images, or questions
/// with their contexts.
pub enum TestInputs {
    Texts(Vec<String>),
    Images(Vec<Vec<u8>>),
    Questions(Vec<QuestionRow>),
}

impl TestInputs {
    pub fn as_inputs(&self) -> Vec<Input<'_>> {
        match self {
            Self::Texts(texts) => texts.iter().map(|text| Input::Text(text)).collect(),
            Self::Images(images) => images.iter().map(|bytes| Input::Image(bytes)).collect(),
            Self::Questions(rows) => rows
                .iter()
                .map(|row| Input::Question {
                    question: &row.question,
                    context: &row.context,
                })
                .collect(),
        }
    }
}

/// The inputs of any model's test split: what measurement and benchmarks feed it.
pub fn inputs(artifacts: &Path, model: &str, task: Task) -> Result<TestInputs> {
    Ok(match task {
        Task::ImageClassification | Task::ZeroShotImageClassification => TestInputs::Images(
            read_images(artifacts, model)?
                .into_iter()
                .map(|(_, bytes)| bytes)
                .collect(),
        ),
        Task::ObjectDetection => TestInputs::Images(
            read_scenes(artifacts, model)?
                .into_iter()
                .map(|(_, bytes)| bytes)
                .collect(),
        ),
        Task::QuestionAnswering => TestInputs::Questions(read_questions(artifacts, model)?),
        _ => TestInputs::Texts(texts(artifacts, model)?),
    })
}

/// One held-out article as a retrieval pair: its title is the query, its body the target.
#[derive(Debug, Clone, Deserialize)]
pub struct TitleBody {
    pub title: String,
    pub body: String,
}

/// Reads `<artifacts>/<name>/data/test_pairs.jsonl`, written by an embedding model's train step.
pub fn read_pairs(artifacts: &Path, model: &str) -> Result<Vec<TitleBody>> {
    read_lines(&artifacts.join(model).join("data/test_pairs.jsonl"))
}

fn read_lines<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}: run `cargo xtask train`", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(number, line)| {
            serde_json::from_str(line).with_context(|| format!("{} line {}: malformed", path.display(), number + 1))
        })
        .collect()
}

/// One gold entity of a held-out sentence: its type and character span.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash)]
pub struct Span {
    #[serde(rename = "type")]
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

/// A held-out sentence of a token classifier, with its gold entities.
#[derive(Debug, Clone, Deserialize)]
pub struct Tagged {
    pub text: String,
    pub entities: Vec<Span>,
}

/// Reads `<artifacts>/<name>/data/test.jsonl` as a token classifier's train step writes it.
pub fn read_tagged(artifacts: &Path, model: &str) -> Result<Vec<Tagged>> {
    read_lines(&artifacts.join(model).join("data/test.jsonl"))
}
