//! One step's run for one model: skipped when its stamp in this clone is fresh, restored
//! from the machine's artifact cache when its key is there, else run and stored.
//!
//! The stamp records the step's key and the hash of its outputs, so an edited input (a new
//! key) or a damaged output makes the step restore or run again. Run counts go to
//! [`Tally`], which the pipeline prints at its end.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;

use crate::cache::{Cache, Key, Lookup, Output};
use crate::stamp::{Stamp, hash_paths};

/// How a step's outputs came to be in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The stamp was fresh: nothing to do.
    UpToDate,
    /// Copied from the cache.
    Restored,
    /// The step ran (and its outputs were stored).
    Ran,
}

impl Outcome {
    /// A line for a step that did not run, nothing for one that did (it spoke for itself).
    pub fn describe(self) -> Option<&'static str> {
        match self {
            Self::UpToDate => Some("    up to date (inputs and outputs unchanged; --force to redo)"),
            Self::Restored => Some("    restored from the cache"),
            Self::Ran => None,
        }
    }

    /// Prints [`Outcome::describe`]'s line, if any.
    pub fn report(self) {
        if let Some(line) = self.describe() {
            eprintln!("{line}");
        }
    }
}

/// How many steps of this run were up to date, restored or run.
#[derive(Default)]
pub struct Tally {
    up_to_date: AtomicUsize,
    restored: AtomicUsize,
    ran: AtomicUsize,
}

impl Tally {
    fn add(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::UpToDate => &self.up_to_date,
            Outcome::Restored => &self.restored,
            Outcome::Ran => &self.ran,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn summary(&self) -> String {
        format!(
            "{} steps ran, {} restored from the cache, {} up to date",
            self.ran.load(Ordering::Relaxed),
            self.restored.load(Ordering::Relaxed),
            self.up_to_date.load(Ordering::Relaxed)
        )
    }
}

/// Where steps keep their stamps and outputs: this clone's root, and the machine's cache
/// (`None` when it is off).
pub struct Runner<'a> {
    pub root: &'a Path,
    pub cache: Option<&'a Cache>,
    pub tally: &'a Tally,
}

/// One step of one model, ready to run.
pub struct Step<'a> {
    /// `train`, `parity-int8`, …: the stamp's name and the cache's label.
    pub name: &'a str,
    pub model: &'a str,
    pub key: Key,
    pub outputs: Vec<Output>,
    /// Where the model's stamps live (`<artifacts>/<model>/.stamps`).
    pub stamps: &'a Path,
}

impl Runner<'_> {
    /// Brings the step's outputs in place: `work` runs only when neither the stamp nor the
    /// cache has them (or `force`, which also replaces the cache's entry).
    pub fn run(&self, step: &Step, force: bool, work: impl FnOnce() -> Result<()>) -> Result<Outcome> {
        let paths: Vec<_> = step.outputs.iter().map(|o| o.path.clone()).collect();
        let outputs_hash = || hash_paths(self.root, &paths);
        let stamp = Stamp::new(step.stamps, step.name, step.key.as_str().to_string());
        let outcome = if !force && stamp.is_fresh(&outputs_hash()?) {
            Outcome::UpToDate
        } else {
            stamp.clear();
            let restored = match self.cache {
                Some(cache) if force => {
                    cache.forget(&step.key);
                    false
                }
                Some(cache) => matches!(
                    cache.restore(step.name, step.model, &step.key, &step.outputs)?,
                    Lookup::Hit
                ),
                None => false,
            };
            if restored {
                Outcome::Restored
            } else {
                work()?;
                // A cache that cannot take the outputs (a full disk) costs later runs time,
                // not this one its result.
                if let Some(cache) = self.cache
                    && let Err(error) = cache.store(step.name, step.model, &step.key, &step.outputs)
                {
                    eprintln!("    warning: not stored in the artifact cache: {error:#}");
                }
                Outcome::Ran
            }
        };
        if outcome != Outcome::UpToDate {
            stamp.write(&outputs_hash()?)?;
        }
        self.tally.add(outcome);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::fs;

    use super::*;
    use crate::cache::KeyBuilder;
    use crate::scratch::ScratchDir;

    /// Runs a step whose work writes `report.json` = `content` and counts its runs.
    fn run(runner: &Runner, root: &Path, key: &str, content: &str, force: bool, runs: &Cell<usize>) -> Outcome {
        let report = root.join("artifacts/m/report.json");
        let step = Step {
            name: "parity-fp32",
            model: "m",
            key: KeyBuilder::new("parity").text("inputs", key).finish(),
            outputs: vec![Output::new("report.json", report.clone())],
            stamps: &root.join("artifacts/m/.stamps"),
        };
        runner
            .run(&step, force, || {
                runs.set(runs.get() + 1);
                fs::create_dir_all(report.parent().unwrap())?;
                fs::write(&report, content)?;
                Ok(())
            })
            .unwrap()
    }

    #[test]
    fn a_step_runs_once_then_is_up_to_date_restored_or_run_as_its_inputs_and_outputs_say() {
        let scratch = ScratchDir::new("step-runner");
        let cache = Cache::at(scratch.join("cache"));
        let tally = Tally::default();
        let (clone_a, clone_b) = (scratch.join("a"), scratch.join("b"));
        let runner_a = Runner {
            root: &clone_a,
            cache: Some(&cache),
            tally: &tally,
        };
        let runs = Cell::new(0);
        assert_eq!(run(&runner_a, &clone_a, "k1", "one", false, &runs), Outcome::Ran);
        assert_eq!(run(&runner_a, &clone_a, "k1", "one", false, &runs), Outcome::UpToDate);

        // A damaged output is put back from the cache, without running.
        let report = clone_a.join("artifacts/m/report.json");
        fs::write(&report, "edited by hand").unwrap();
        assert_eq!(run(&runner_a, &clone_a, "k1", "one", false, &runs), Outcome::Restored);
        assert_eq!(fs::read_to_string(&report).unwrap(), "one");

        // Another clone on the machine gets it from the cache.
        let runner_b = Runner {
            root: &clone_b,
            cache: Some(&cache),
            tally: &tally,
        };
        assert_eq!(run(&runner_b, &clone_b, "k1", "one", false, &runs), Outcome::Restored);
        assert_eq!(
            fs::read_to_string(clone_b.join("artifacts/m/report.json")).unwrap(),
            "one"
        );
        assert_eq!(runs.get(), 1);

        // New inputs run the step; --force runs it and replaces the cache's entry.
        assert_eq!(run(&runner_a, &clone_a, "k2", "two", false, &runs), Outcome::Ran);
        assert_eq!(run(&runner_a, &clone_a, "k1", "one again", true, &runs), Outcome::Ran);
        assert_eq!(runs.get(), 3);
        assert_eq!(run(&runner_b, &clone_b, "k1", "?", true, &runs), Outcome::Ran);
        fs::remove_file(clone_a.join("artifacts/m/report.json")).unwrap();
        assert_eq!(run(&runner_a, &clone_a, "k1", "?", false, &runs), Outcome::Restored);
        assert_eq!(fs::read_to_string(&report).unwrap(), "?");
        assert_eq!(tally.summary(), "4 steps ran, 3 restored from the cache, 1 up to date");
    }

    #[test]
    fn without_a_cache_a_step_whose_output_is_gone_runs_again() {
        let scratch = ScratchDir::new("step-no-cache");
        let tally = Tally::default();
        let root = scratch.path();
        let runner = Runner {
            root,
            cache: None,
            tally: &tally,
        };
        let runs = Cell::new(0);
        assert_eq!(run(&runner, root, "k", "x", false, &runs), Outcome::Ran);
        fs::remove_file(root.join("artifacts/m/report.json")).unwrap();
        assert_eq!(run(&runner, root, "k", "x", false, &runs), Outcome::Ran);
        assert_eq!(runs.get(), 2);
    }
}
