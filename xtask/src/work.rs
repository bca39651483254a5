//! What one sequence costs in arithmetic: the operations a BERT-style encoder does on a
//! sequence, counted from `config.json`'s sizes. The report, `select` (for `serving.json`)
//! and the bench (against this CPU's measured peak) all count it here.

use modelcrate_schema::Variant;
use serde_json::Value;

/// Sequence lengths (tokens) each variant's work is stated at: a short text (the bench's
/// mixed-short workload is mostly under it) and the news models' max length.
pub const WORK_AT_TOKENS: [u64; 2] = [32, 128];

/// The sizes of an encoder that decide its work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoder {
    pub layers: u64,
    hidden: u64,
    feed_forward: u64,
}

impl Encoder {
    /// The encoder `config.json` describes, with `kept_layers` of its layers when a
    /// distilled student kept fewer; `None` for a model that is not such an encoder.
    pub fn of(config: &Value, kept_layers: Option<u64>) -> Option<Self> {
        Some(Self {
            layers: layers(config, kept_layers)?,
            hidden: config["hidden_size"].as_u64()?,
            feed_forward: config["intermediate_size"].as_u64()?,
        })
    }

    /// Billions of operations (a multiply-add is two) over sequences whose token counts
    /// have mean `mean_tokens` and mean square `mean_square_tokens`: per layer the four
    /// attention projections (4·n·h²), the feed-forward (2·n·h·f) and the attention's two
    /// n×n products (2·n²·h), in multiply-adds. Embedding lookups, norms and the head are
    /// left out (under 1 % here). Padding is not counted: this is the work the answer needs.
    pub fn gop_per_sequence(&self, mean_tokens: f64, mean_square_tokens: f64) -> f64 {
        let (hidden, feed_forward) = (self.hidden as f64, self.feed_forward as f64);
        let per_layer =
            mean_tokens * (4.0 * hidden * hidden + 2.0 * hidden * feed_forward) + 2.0 * mean_square_tokens * hidden;
        2.0 * self.layers as f64 * per_layer / 1e9
    }

    /// [`Self::gop_per_sequence`] for sequences of exactly `tokens`.
    pub fn gop_at(&self, tokens: u64) -> f64 {
        let tokens = tokens as f64;
        self.gop_per_sequence(tokens, tokens * tokens)
    }

    /// The work at each of [`WORK_AT_TOKENS`], keyed by the token count.
    pub fn gop_at_work_lengths(&self) -> std::collections::BTreeMap<u64, f64> {
        WORK_AT_TOKENS
            .iter()
            .map(|&tokens| (tokens, self.gop_at(tokens)))
            .collect()
    }
}

/// A variant's encoder layers: a distilled student's `kept_layers`, else the config's.
pub fn layers(config: &Value, kept_layers: Option<u64>) -> Option<u64> {
    kept_layers.or_else(|| config["num_hidden_layers"].as_u64())
}

/// How many of the teacher's layers a variant listed in `variants.json` (or
/// `variants.student.json`) kept: a distilled student's count, `None` for the teacher's own.
pub fn kept_layers(variant: &Variant) -> Option<u64> {
    variant.student.as_ref().map(|student| student.kept_layers.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelcrate_schema::Student;
    use serde_json::json;

    #[test]
    fn an_encoders_work_is_counted_from_its_sizes_and_a_students_layers() {
        let config = json!({"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6});
        let teacher = Encoder::of(&config, None).unwrap();
        // MiniLM-L6 at 128 tokens: 6 × (128 × (4·384² + 2·384·1536) + 2·128²·384) multiply-adds.
        assert!(
            (teacher.gop_at(128) - 2.868_903_936).abs() < 1e-9,
            "{}",
            teacher.gop_at(128)
        );
        let student_variant = Variant {
            student: Some(Student {
                kept_layers: vec![1, 3, 5],
                teacher_layers: 6,
            }),
            ..Variant::fp32_export()
        };
        let student = Encoder::of(&config, kept_layers(&student_variant)).unwrap();
        assert_eq!(student.layers, 3);
        assert_eq!(kept_layers(&Variant::fp32_export()), None);
        assert_eq!(student.gop_at(128) * 2.0, teacher.gop_at(128));
        assert_eq!(Encoder::of(&json!({"num_classes": 10}), Some(1)), None);
    }

    #[test]
    fn a_mix_of_lengths_costs_its_mean_and_its_mean_square() {
        let config = json!({"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6});
        let encoder = Encoder::of(&config, None).unwrap();
        // Half the sequences of 32 tokens, half of 128: the mean of the two costs, which
        // is more than the cost at the mean length (the n² term).
        let (mean, mean_square) = (80.0, (32.0f64.powi(2) + 128.0f64.powi(2)) / 2.0);
        let mixed = encoder.gop_per_sequence(mean, mean_square);
        let halves = (encoder.gop_at(32) + encoder.gop_at(128)) / 2.0;
        assert!((mixed - halves).abs() < 1e-12, "{mixed} vs {halves}");
        assert!(mixed > encoder.gop_at(80));
    }
}
