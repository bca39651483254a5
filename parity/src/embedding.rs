//! Parity of a sentence-embedding model: token ids, every golden embedding alone and in
//! one padded batch against `SentenceTransformer.encode`, and title → body retrieval
//! over the test split against PyTorch's recall (a distilled student's also against its
//! teacher's).

use anyhow::{Context, Result};
use modelcrate_schema::{Agreement, Drift, ParityMetric, ParitySummary};
use serde::Deserialize;
use serde_json::json;

use super::{Checked, Figures, Gate, Rule, check_token_ids};
use crate::test_split::TitleBody;
use crate::through::Through;

/// FP32-class bounds against `SentenceTransformer.encode`.
const COSINE_BOUND: f64 = 0.99999;
const ABS_BOUND: f64 = 1e-5;
/// The INT8 gate's cosine floor.
const INT8_COSINE_BOUND: f64 = 0.99;

#[derive(Deserialize)]
struct Reference {
    checkpoint_sha256: String,
    cases: Vec<Case>,
    test_split: Retrieval,
    /// A distilled student's reference carries its teacher's test recall.
    #[serde(default)]
    teacher: Option<Teacher>,
}

#[derive(Deserialize)]
struct Teacher {
    test_split: TeacherRetrieval,
}

#[derive(Deserialize)]
struct TeacherRetrieval {
    queries: usize,
    recall_at_10: f64,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f64>,
}

#[derive(Deserialize)]
struct Retrieval {
    queries: usize,
    recall_at_1: f64,
    recall_at_10: f64,
    top1: Vec<usize>,
}

/// Cosine and max |difference| of a Rust embedding against Python's.
fn compare(rust: &[f32], python: &[f64]) -> (f64, f64) {
    if rust.len() != python.len() {
        return (f64::NEG_INFINITY, f64::INFINITY);
    }
    let (mut dot, mut rust_norm, mut python_norm, mut max_abs) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&r, &p) in rust.iter().zip(python) {
        let r = f64::from(r);
        dot += r * p;
        rust_norm += r * r;
        python_norm += p * p;
        max_abs = max_abs.max((r - p).abs());
    }
    let norms = rust_norm.sqrt() * python_norm.sqrt();
    (if norms == 0.0 { 0.0 } else { dot / norms }, max_abs)
}

/// Min and mean cosine, max |difference|, and the ids of cases under `floor`.
struct Cosines {
    min_cosine: f64,
    mean_cosine: f64,
    max_abs: f64,
    below: Vec<String>,
}

fn agreement(reference: &Reference, embeddings: &[Vec<f32>], floor: f64) -> Cosines {
    let mut result = Cosines {
        min_cosine: f64::INFINITY,
        mean_cosine: 0.0,
        max_abs: 0.0,
        below: Vec::new(),
    };
    for (case, rust) in reference.cases.iter().zip(embeddings) {
        let (cosine, max_abs) = compare(rust, &case.embedding);
        result.min_cosine = result.min_cosine.min(cosine);
        result.mean_cosine += cosine / reference.cases.len().max(1) as f64;
        result.max_abs = result.max_abs.max(max_abs);
        if cosine < floor {
            result.below.push(case.id.clone());
        }
    }
    result
}

/// Recall@k of each title's own body (ties count for the right answer, as in Python)
/// and each title's top-1 body.
fn retrieval(queries: &[Vec<f32>], corpus: &[Vec<f32>]) -> (f64, f64, Vec<usize>) {
    let dot = |a: &[f32], b: &[f32]| -> f32 { a.iter().zip(b).map(|(x, y)| x * y).sum() };
    let (mut at_1, mut at_10, mut top1) = (0usize, 0usize, Vec::with_capacity(queries.len()));
    for (index, query) in queries.iter().enumerate() {
        let scores: Vec<f32> = corpus.iter().map(|body| dot(query, body)).collect();
        let own = scores[index];
        let rank = scores.iter().filter(|&&score| score > own).count();
        at_1 += usize::from(rank < 1);
        at_10 += usize::from(rank < 10);
        let best = scores.iter().enumerate().fold(
            (0, f32::NEG_INFINITY),
            |best, (i, &s)| if s > best.1 { (i, s) } else { best },
        );
        top1.push(best.0);
    }
    let share = |n: usize| n as f64 / queries.len().max(1) as f64;
    (share(at_1), share(at_10), top1)
}

pub(super) async fn check(
    through: &Through,
    reference: &str,
    pairs: &[TitleBody],
    figures: &mut Figures,
) -> Result<Checked> {
    let reference: Reference = serde_json::from_str(reference).context("it is not what `cargo xtask golden` writes")?;
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();

    let golden_ids = reference.cases.iter().map(|c| (c.id.as_str(), c.input_ids.as_slice()));
    let id_mismatches = check_token_ids(through, &texts, golden_ids, figures).await?;

    let floor = match figures.gate {
        Gate::Exact => COSINE_BOUND,
        Gate::Int8 => INT8_COSINE_BOUND,
    };
    let alone = agreement(&reference, &through.embed_each(&texts).await?, floor);
    let batched = agreement(&reference, &through.embed(&texts).await?, floor);
    let merged = agreement(&reference, &through.embed_at_once(&texts).await?, floor);
    let batch_size = through.batch_size().min(texts.len());
    for (what, found) in [
        ("each input alone", &alone),
        (
            &*format!("all inputs in one request (length-sorted runs of up to {batch_size})"),
            &batched,
        ),
        ("each input a request, all at once (merged by the engine)", &merged),
    ] {
        figures.row(
            Rule::Every,
            &format!("cosine vs encode(), {what}"),
            format!("min {:.7}, mean {:.7}", found.min_cosine, found.mean_cosine),
            &format!("≥ {floor} on every input"),
            found.below.is_empty() && found.min_cosine.is_finite(),
        );
        figures.row(
            Rule::Exact,
            &format!("max |difference| vs encode(), {what}"),
            format!("{:.2e}", found.max_abs),
            "1e-5",
            found.max_abs <= ABS_BOUND,
        );
    }

    let titles: Vec<&str> = pairs.iter().map(|p| p.title.as_str()).collect();
    let bodies: Vec<&str> = pairs.iter().map(|p| p.body.as_str()).collect();
    let (recall_1, recall_10, top1) = retrieval(
        &through.embed_in_requests(&titles).await?,
        &through.embed_in_requests(&bodies).await?,
    );
    let python = &reference.test_split;
    let agree = top1.iter().zip(&python.top1).filter(|(r, p)| r == p).count();
    let same_queries = pairs.len() == python.queries;
    // Equal recall means the same number of queries found; Python's share may be a float32.
    let hits = |recall: f64| (recall * pairs.len() as f64).round() as i64;
    figures.test_metric(
        &format!("test split recall@10 ({} title → body queries)", pairs.len()),
        recall_10,
        python.recall_at_10,
        hits(recall_10) == hits(python.recall_at_10),
        same_queries,
    );
    if figures.int8() {
        let (_, alone, _) = retrieval(&through.embed_each(&titles).await?, &through.embed_each(&bodies).await?);
        figures.alone_metric("recall@10", alone, python.recall_at_10);
    }
    if let Some(teacher) = &reference.teacher {
        let teacher = &teacher.test_split;
        figures.teacher_metric(
            "recall@10",
            recall_10,
            teacher.recall_at_10,
            pairs.len() == teacher.queries,
        );
    }
    figures.row(
        Rule::Exact,
        "test split recall@1",
        format!("Rust {recall_1:.4}, PyTorch {:.4}", python.recall_at_1),
        "equal",
        hits(recall_1) == hits(python.recall_at_1),
    );
    figures.row(
        Rule::Every,
        "test split top-1 body agreement",
        format!("{agree}/{}", pairs.len()),
        "reported",
        true,
    );

    let describe = |found: &Cosines| {
        json!({
            "min_cosine": found.min_cosine,
            "mean_cosine": found.mean_cosine,
            "max_abs_diff": found.max_abs,
            "below_floor": found.below,
        })
    };
    let details = json!({
        "token_ids": {"inputs": texts.len(), "mismatched": id_mismatches},
        "embedding": {
            "alone": describe(&alone),
            "batched": describe(&batched),
            "merged": describe(&merged),
            "cosine_floor": floor,
            "abs_bound": ABS_BOUND,
        },
        "test_split": {
            "queries": pairs.len(),
            "rust_recall_at_1": recall_1,
            "rust_recall_at_10": recall_10,
            "pytorch_recall_at_1": python.recall_at_1,
            "pytorch_recall_at_10": python.recall_at_10,
            "teacher_recall_at_10": reference.teacher.as_ref().map(|teacher| teacher.test_split.recall_at_10),
            "top1_agreement": agree,
        },
    });
    Ok(Checked {
        checkpoint: reference.checkpoint_sha256.clone(),
        metric: ParityMetric {
            name: "recall@10".into(),
            value: recall_10,
            pytorch: python.recall_at_10,
            teacher: reference
                .teacher
                .as_ref()
                .map(|teacher| teacher.test_split.recall_at_10),
        },
        summary: ParitySummary {
            drift: Drift::new("min cosine", alone.min_cosine),
            golden: Agreement::new(
                &format!("cosine ≥ {floor}"),
                texts.len() - alone.below.len(),
                texts.len(),
            ),
            test_agreement: Agreement::new("top-1 body", agree, pairs.len()),
        },
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_counts_ties_for_the_right_answer() {
        let queries = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 0.0]];
        // Query 2's own body ties with body 0; query 1 finds its own.
        let corpus = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 0.0]];
        let (at_1, at_10, top1) = retrieval(&queries, &corpus);
        assert_eq!((at_1, at_10), (1.0, 1.0));
        assert_eq!(top1, vec![0, 1, 0]);
    }

    #[test]
    fn comparison_reports_cosine_and_the_largest_difference() {
        let (cosine, max_abs) = compare(&[0.6, 0.8], &[0.6, 0.8]);
        assert!((cosine - 1.0).abs() < 1e-7 && max_abs < 1e-7);
        let (cosine, _) = compare(&[1.0, 0.0], &[0.0, 1.0]);
        assert_eq!(cosine, 0.0);
        assert_eq!(compare(&[1.0], &[1.0, 2.0]).0, f64::NEG_INFINITY);
    }
}
