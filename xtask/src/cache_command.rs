//! `cargo xtask cache`: what the machine's artifact cache holds, how often it served, and
//! pruning it to a bound.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;

use crate::cache::{self, Cache, human};

#[derive(Args)]
pub struct CacheArgs {
    /// Remove the least recently used entries until the cache holds at most SIZE
    /// (`20G`, `500M`, bytes).
    #[arg(long, value_name = "SIZE", value_parser = cache::parse_size)]
    prune: Option<u64>,
    /// Remove every entry (and the statistics).
    #[arg(long, conflicts_with = "prune")]
    clear: bool,
}

pub fn run(args: &CacheArgs) -> Result<()> {
    let Some(cache) = Cache::open()? else {
        println!("the artifact cache is off (MODELCRATE_CACHE=off)");
        return Ok(());
    };
    if args.clear {
        let (removed, freed) = cache.prune(0)?;
        let _ = std::fs::remove_file(cache.dir().join("events.log"));
        println!("cleared {}: {removed} entries, {}", cache.dir().display(), human(freed));
        return Ok(());
    }
    if let Some(bound) = args.prune {
        let (removed, freed) = cache.prune(bound)?;
        println!(
            "pruned {} to {}: {removed} entries removed, {} freed",
            cache.dir().display(),
            human(bound),
            human(freed)
        );
    }
    print!("{}", summary(&cache)?);
    Ok(())
}

/// A table per step: entries, size, and the hits and misses `events.log` recorded.
fn summary(cache: &Cache) -> Result<String> {
    #[derive(Default)]
    struct Row {
        entries: usize,
        bytes: u64,
        hits: usize,
        misses: usize,
    }
    // Per-variant steps (`parity-int8`) are counted under their step (`parity`).
    let step_of = |name: &str| name.split_once('-').map_or(name, |(step, _)| step).to_string();
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for entry in cache.entries()? {
        let row = rows.entry(step_of(&entry.step)).or_default();
        row.entries += 1;
        row.bytes += entry.bytes;
    }
    for event in cache.events() {
        let row = rows.entry(step_of(&event.step)).or_default();
        match event.kind.as_str() {
            "hit" => row.hits += 1,
            "miss" => row.misses += 1,
            _ => {}
        }
    }
    let mut text = format!("artifact cache {}\n", cache.dir().display());
    text += &format!(
        "{:<10} {:>8} {:>10} {:>8} {:>8}\n",
        "step", "entries", "size", "hits", "misses"
    );
    let mut total = Row::default();
    for (step, row) in &rows {
        text += &format!(
            "{step:<10} {:>8} {:>10} {:>8} {:>8}\n",
            row.entries,
            human(row.bytes),
            row.hits,
            row.misses
        );
        total.entries += row.entries;
        total.bytes += row.bytes;
        total.hits += row.hits;
        total.misses += row.misses;
    }
    text += &format!(
        "{:<10} {:>8} {:>10} {:>8} {:>8}\n",
        "all",
        total.entries,
        human(total.bytes),
        total.hits,
        total.misses
    );
    if let Some(first) = cache.events().first() {
        let days = (now_seconds().saturating_sub(first.time)) as f64 / 86_400.0;
        text += &format!("(hits and misses of the last {days:.1} days; `--clear` resets them)\n");
    }
    Ok(text)
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
