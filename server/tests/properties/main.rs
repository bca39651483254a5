//! Properties of everything a client controls, on stable Rust with proptest: request
//! bodies of every protocol (`bodies`), image forms and query strings (`forms`), image
//! bytes (`images`), and texts through
//! tokenization, entity aggregation and answer spans (`text`). Each property runs a
//! bounded number of generated cases from a fixed seed, so the test command repeats the
//! same cases; `PROPTEST_RNG_SEED` explores others and `PROPTEST_CASES` runs more.
//! A failure prints the smallest input proptest shrank it to.

mod bodies;
mod forms;
mod images;
mod text;

#[path = "../common/mod.rs"]
mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The seed of the test command's cases.
const SEED: u64 = 20261206;

/// `cases` cases from the fixed seed, unless the environment asks otherwise.
pub fn config(cases: u32) -> Config {
    let from_env = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            from_env.cases
        } else {
            cases
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            from_env.rng_seed
        } else {
            RngSeed::Fixed(SEED)
        },
        failure_persistence: None,
        ..from_env
    }
}

/// Text as clients send it, and as no test names it: words and digits, then every kind
/// of character that trips offsets — combining marks, emoji with skin tones, ZWJ
/// sequences and flags, right-to-left scripts and overrides, CJK, NUL and control
/// characters, zero-width characters, every kind of whitespace — and any character.
pub fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[A-Za-z]{1,10}",
        2 => "[0-9]{1,4}(\\.[0-9]{1,2})?",
        2 => prop::sample::select(vec![" ", "  ", "\t", "\n", "\r\n", "\u{a0}", "\u{3000}", "\u{2028}"]).prop_map(String::from),
        1 => prop::sample::select(vec![".", ",", "-", "'", "\"", "(", ")", "/", "@", "#", "…", "—"]).prop_map(String::from),
        1 => prop::sample::select(vec!["e\u{301}", "n\u{303}", "\u{301}", "a\u{308}\u{304}", "\u{0915}\u{094d}\u{0937}"]).prop_map(String::from),
        1 => prop::sample::select(vec!["👍🏽", "👨\u{200d}👩\u{200d}👧", "🇫🇷", "🤖", "❤\u{fe0f}"]).prop_map(String::from),
        1 => prop::sample::select(vec!["שלום", "مرحبا", "\u{202e}abc\u{202c}", "\u{200f}"]).prop_map(String::from),
        1 => prop::sample::select(vec!["漢字", "かな", "한국어"]).prop_map(String::from),
        1 => prop::sample::select(vec!["\0", "\u{1}", "\u{7f}", "\u{200b}", "\u{feff}", "\u{fffd}"]).prop_map(String::from),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// [`hostile_text`] with something besides whitespace in it.
pub fn hostile_nonblank_text() -> impl Strategy<Value = String> {
    (hostile_text(), "[A-Za-z0-9]{1,8}").prop_map(|(text, word)| format!("{text} {word}"))
}
