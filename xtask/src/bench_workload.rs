//! The traffic `cargo xtask bench` sends: what users send, not one shape of text.
//!
//! - `articles`: the model's test split as it is (for the news models, whole articles,
//!   nearly all cut to the model's 128 tokens);
//! - `mixed-short`: single sentences to short paragraphs (one to three consecutive
//!   sentences of a test-split text, at most 100 words), drawn with a fixed seed, so that
//!   lengths run from a few tokens to the max length with most texts short.
//!
//! Each workload is a JSON-lines file of `{"text": …}` rows that `modelcrate-load` reads;
//! its word counts are reported beside every table.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Texts of the mixed workload: enough that no client repeats a text within a level.
const MIXED_TEXTS: usize = 1000;
/// A mixed text is at most this long: about the 128 tokens the models take.
const MIXED_MAX_WORDS: usize = 100;
const SEED: u64 = 0x6d6f_6465_6c63_7261;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Articles,
    MixedShort,
}

impl Workload {
    pub const ALL: [Self; 2] = [Self::MixedShort, Self::Articles];

    pub fn name(self) -> &'static str {
        match self {
            Self::Articles => "articles",
            Self::MixedShort => "mixed-short",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Articles => "the test split's texts as they are",
            Self::MixedShort => {
                "single sentences to short paragraphs: 1–3 consecutive sentences of a test-split text (55 / 30 / 15 %), at most 100 words, seeded"
            }
        }
    }

    /// The workload's corpus for `model`, written under `out_dir` when it is made here.
    pub fn corpus(self, test_split: &Path, out_dir: &Path, model: &str) -> Result<PathBuf> {
        match self {
            Self::Articles => Ok(test_split.to_path_buf()),
            Self::MixedShort => {
                let texts = read_texts(test_split)?;
                let mixed = mixed_short(&texts);
                if mixed.is_empty() {
                    bail!("{}: no sentences to make the mixed workload of", test_split.display());
                }
                let path = out_dir.join(format!("{model}-{}.jsonl", self.name()));
                let lines: Vec<String> = mixed.iter().map(|text| json!({"text": text}).to_string()).collect();
                std::fs::write(&path, lines.join("\n") + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(path)
            }
        }
    }
}

fn read_texts(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let row: Value =
                serde_json::from_str(line).with_context(|| format!("{} is not JSON lines", path.display()))?;
            row["text"]
                .as_str()
                .map(str::to_string)
                .with_context(|| format!("{}: a row without a `text`", path.display()))
        })
        .collect()
}

/// Word counts of a corpus: (texts, p10, p50, p90, mean), for the table's caption.
pub fn word_counts(corpus: &Path) -> Result<(usize, usize, usize, usize, f64)> {
    let mut words: Vec<usize> = read_texts(corpus)?
        .iter()
        .map(|t| t.split_whitespace().count())
        .collect();
    if words.is_empty() {
        bail!("{} has no texts", corpus.display());
    }
    words.sort_unstable();
    let at = |q: f64| words[((words.len() - 1) as f64 * q).round() as usize];
    let mean = words.iter().sum::<usize>() as f64 / words.len() as f64;
    Ok((words.len(), at(0.1), at(0.5), at(0.9), mean))
}

/// Sentences at `.`, `!` or `?` followed by a space (the punctuation kept).
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_some_and(|n| n.is_ascii_whitespace()) {
            let sentence = text[start..=i].trim();
            if !sentence.is_empty() {
                out.push(sentence);
            }
            start = i + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// A splitmix64 step: a seeded, dependency-free stream of numbers.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Texts of one to three consecutive sentences, walking every text's sentences in turn
/// with seeded group sizes, then shuffled with the same seed; at most `MIXED_TEXTS`.
fn mixed_short(texts: &[String]) -> Vec<String> {
    let mut state = SEED;
    let mut out = Vec::new();
    for text in texts {
        let sentences = sentences(text);
        let mut at = 0;
        while at < sentences.len() {
            let group = match next(&mut state) % 100 {
                0..55 => 1,
                55..85 => 2,
                _ => 3,
            };
            let end = (at + group).min(sentences.len());
            let chunk = sentences[at..end].join(" ");
            let words = chunk.split_whitespace().count();
            if (2..=MIXED_MAX_WORDS).contains(&words) {
                out.push(chunk);
            }
            at = end;
        }
    }
    // Fisher–Yates with the same stream: articles' sentences spread over the corpus.
    for i in (1..out.len()).rev() {
        let j = (next(&mut state) % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out.truncate(MIXED_TEXTS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_at_end_punctuation_followed_by_space() {
        assert_eq!(
            sentences("Shares rose 2.5% today. Why? Rates fell! Markets cheered"),
            vec!["Shares rose 2.5% today.", "Why?", "Rates fell!", "Markets cheered"]
        );
    }

    #[test]
    fn the_mixed_workload_is_short_varied_and_the_same_every_time() {
        let article = "The bank cut rates. Shares rose sharply. Analysts had expected it. \
                       The pound fell against the dollar. Exporters welcomed the move. "
            .repeat(40);
        let texts = vec![article; 30];
        let mixed = mixed_short(&texts);
        assert_eq!(mixed, mixed_short(&texts), "seeded");
        assert_eq!(mixed.len(), MIXED_TEXTS);
        let words: Vec<usize> = mixed.iter().map(|t| t.split_whitespace().count()).collect();
        assert!(words.iter().all(|&w| (2..=MIXED_MAX_WORDS).contains(&w)));
        // One, two and three sentences all occur.
        let sentence_counts: std::collections::BTreeSet<usize> = mixed.iter().map(|t| sentences(t).len()).collect();
        assert_eq!(sentence_counts, [1, 2, 3].into_iter().collect());
    }
}
