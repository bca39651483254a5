//! The templates filled with a model's facts, formatted by rustfmt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use askama::{DynTemplate, Template};

use super::COMMAND;
use super::facts::{
    DetectionFacts, EmbeddingFacts, EntityFacts, ImageFacts, ImageTextFacts, ModelFacts, QuestionFacts,
};
use crate::card_figures;

#[derive(Template)]
#[template(path = "model/Cargo.toml", escape = "none")]
struct ModelCargoToml<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "model/lib.rs", escape = "none")]
struct ModelLib<'a> {
    model: &'a ModelFacts,
}

#[derive(Template)]
#[template(path = "model/README.md", escape = "none")]
struct ModelCard<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "model/golden_test.rs", escape = "none")]
struct ModelGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "embedding/lib.rs", escape = "none")]
struct EmbeddingLib<'a> {
    model: &'a ModelFacts,
    embedding: &'a EmbeddingFacts,
}

#[derive(Template)]
#[template(path = "embedding/README.md", escape = "none")]
struct EmbeddingCard<'a> {
    model: &'a ModelFacts,
    embedding: &'a EmbeddingFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "embedding/golden_test.rs", escape = "none")]
struct EmbeddingGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "token/lib.rs", escape = "none")]
struct TokenLib<'a> {
    model: &'a ModelFacts,
    entity: &'a EntityFacts,
}

#[derive(Template)]
#[template(path = "token/README.md", escape = "none")]
struct TokenCard<'a> {
    model: &'a ModelFacts,
    entity: &'a EntityFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "token/golden_test.rs", escape = "none")]
struct TokenGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "question/lib.rs", escape = "none")]
struct QuestionLib<'a> {
    model: &'a ModelFacts,
    question: &'a QuestionFacts,
}

#[derive(Template)]
#[template(path = "question/README.md", escape = "none")]
struct QuestionCard<'a> {
    model: &'a ModelFacts,
    question: &'a QuestionFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "question/golden_test.rs", escape = "none")]
struct QuestionGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "image/lib.rs", escape = "none")]
struct ImageLib<'a> {
    model: &'a ModelFacts,
    image: &'a ImageFacts,
}

#[derive(Template)]
#[template(path = "image/README.md", escape = "none")]
struct ImageCard<'a> {
    model: &'a ModelFacts,
    image: &'a ImageFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "image/golden_test.rs", escape = "none")]
struct ImageGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "detection/lib.rs", escape = "none")]
struct DetectionLib<'a> {
    model: &'a ModelFacts,
    detection: &'a DetectionFacts,
}

#[derive(Template)]
#[template(path = "detection/README.md", escape = "none")]
struct DetectionCard<'a> {
    model: &'a ModelFacts,
    detection: &'a DetectionFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "detection/golden_test.rs", escape = "none")]
struct DetectionGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "image_text/lib.rs", escape = "none")]
struct ImageTextLib<'a> {
    model: &'a ModelFacts,
    image_text: &'a ImageTextFacts,
}

#[derive(Template)]
#[template(path = "image_text/README.md", escape = "none")]
struct ImageTextCard<'a> {
    model: &'a ModelFacts,
    image_text: &'a ImageTextFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "image_text/golden_test.rs", escape = "none")]
struct ImageTextGoldenTest<'a> {
    model: &'a ModelFacts,
    command: &'a str,
}

#[derive(Template)]
#[template(path = "umbrella/Cargo.toml", escape = "none")]
struct UmbrellaCargoToml<'a> {
    models: &'a [ModelFacts],
    command: &'a str,
}

#[derive(Template)]
#[template(path = "umbrella/lib.rs", escape = "none")]
struct UmbrellaLib<'a> {
    models: &'a [ModelFacts],
    command: &'a str,
}

/// The files of `generated/`, path relative to it → contents.
pub fn render(models: &[ModelFacts], rustfmt_config: &Path) -> Result<BTreeMap<PathBuf, String>> {
    let rust = |template: &dyn DynTemplate| -> Result<String> { rustfmt(&template.dyn_render()?, rustfmt_config) };
    let mut files = BTreeMap::new();
    for model in models {
        let dir = PathBuf::from(&model.name);
        files.insert(
            dir.join("Cargo.toml"),
            ModelCargoToml {
                model,
                command: COMMAND,
            }
            .render()?,
        );
        let (lib, golden, card) = match (&model.image, &model.embedding, &model.entity) {
            _ if let Some(question) = &model.question => (
                rust(&QuestionLib { model, question })?,
                rust(&QuestionGoldenTest {
                    model,
                    command: COMMAND,
                })?,
                QuestionCard {
                    model,
                    question,
                    command: COMMAND,
                }
                .render()?,
            ),
            _ if let Some(image_text) = &model.image_text => (
                rust(&ImageTextLib { model, image_text })?,
                rust(&ImageTextGoldenTest {
                    model,
                    command: COMMAND,
                })?,
                ImageTextCard {
                    model,
                    image_text,
                    command: COMMAND,
                }
                .render()?,
            ),
            _ if let Some(detection) = &model.detection => (
                rust(&DetectionLib { model, detection })?,
                rust(&DetectionGoldenTest {
                    model,
                    command: COMMAND,
                })?,
                DetectionCard {
                    model,
                    detection,
                    command: COMMAND,
                }
                .render()?,
            ),
            (Some(image), _, _) => (
                rust(&ImageLib { model, image })?,
                rust(&ImageGoldenTest {
                    model,
                    command: COMMAND,
                })?,
                ImageCard {
                    model,
                    image,
                    command: COMMAND,
                }
                .render()?,
            ),
            (None, _, Some(entity)) => (
                rust(&TokenLib { model, entity })?,
                rust(&TokenGoldenTest {
                    model,
                    command: COMMAND,
                })?,
                TokenCard {
                    model,
                    entity,
                    command: COMMAND,
                }
                .render()?,
            ),
            (None, Some(embedding), None) => (
                rust(&EmbeddingLib { model, embedding })?,
                rust(&EmbeddingGoldenTest {
                    model,
                    command: COMMAND,
                })?,
                EmbeddingCard {
                    model,
                    embedding,
                    command: COMMAND,
                }
                .render()?,
            ),
            (None, None, None) => (
                rust(&ModelLib { model })?,
                rust(&ModelGoldenTest {
                    model,
                    command: COMMAND,
                })?,
                ModelCard {
                    model,
                    command: COMMAND,
                }
                .render()?,
            ),
        };
        files.insert(dir.join("src/lib.rs"), lib);
        files.insert(dir.join("tests/golden.rs"), golden);
        files.insert(dir.join("README.md"), card);
        files.insert(dir.join(card_figures::FILE), model.training_record.clone());
    }
    files.insert(
        PathBuf::from("models/Cargo.toml"),
        UmbrellaCargoToml {
            models,
            command: COMMAND,
        }
        .render()?,
    );
    files.insert(
        PathBuf::from("models/src/lib.rs"),
        rust(&UmbrellaLib {
            models,
            command: COMMAND,
        })?,
    );
    Ok(files)
}

fn rustfmt(source: &str, config: &Path) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run rustfmt (rustup component add rustfmt)")?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().context("no stdin for rustfmt")?;
        stdin.write_all(source.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "rustfmt refused a rendered file (a template bug):\n{}\n---\n{source}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}
