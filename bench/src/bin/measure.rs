//! `modelcrate-measure`: times one variant of a generated model on this machine, through
//! the generated crate and the runtime the server uses, on the model's held-out test split.
//!
//! One process per variant, so that its peak RSS is its own. After a warm-up it measures
//! latency of single-input requests (p50/p90/p99: tokenization or image decoding, inference
//! and scoring, as a batch-1 request costs) and throughput in batches of 32 test-split
//! inputs (texts or image files), with one session of `--intra-threads` threads. Writes
//! `<artifacts>/<name>/bench/<variant>.json`; `cargo xtask select` compares variants by
//! these figures, measured in the same run.
//!
//! `--costs`, for the variant `select` chose: its costs (`runtime::policy::Costs`): the
//! same 16 texts, whose lengths spread over a bucket (up to 16, 32, 64 and 128 tokens,
//! within the model's max length; images have one size), run one, four or sixteen per
//! run, timed on one session of every core alone and on one single-thread session per
//! core all at once, and the engine policy they argue for (`EnginePolicy::from_costs`:
//! layout, how far to merge by length), to `<variant>.costs.json`; `select` copies the
//! policy into `serving.json`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::sync::Arc;

use modelcrate_bench::stats::{machine, quantile_ms};
use modelcrate_parity::test_split;
use modelcrate_runtime::json_file;
use modelcrate_runtime::policy::from_costs;
use modelcrate_runtime::text::EncodedBatch;
use modelcrate_runtime::{CostPoint, Costs, Input, Lane, Layout, LoadOptions, TaskModel, VariantChoice, image};
use modelcrate_schema::{CostsReport, Latency, MeasureReport, Rss, SessionLayout, Throughput};

/// The fewest batches a throughput figure is measured over.
const MIN_THROUGHPUT_BATCHES: usize = 4;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    model: String,
    /// A variant named in `onnx/variants.json`.
    #[arg(long)]
    variant: String,
    #[arg(long, env = "MODELCRATE_ARTIFACTS", default_value = "artifacts")]
    artifacts: PathBuf,
    #[arg(long, env = "ORT_DYLIB_PATH")]
    ort_dylib: Option<PathBuf>,
    /// Intra-op threads of the one session (the server's default layout is 2 sessions × 1).
    #[arg(long, default_value_t = 1)]
    intra_threads: usize,
    /// Single-input requests timed for the latency figures. Of 100, p99 is the second
    /// slowest (nearest rank), and they cost a fresh run half of what 200 did (up to 6.5 s
    /// per variant of the slowest models, ~2 minutes over all of them).
    #[arg(long, default_value_t = 100)]
    latency_requests: usize,
    /// Rows per run for the throughput figure.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Throughput runs over the test split last at least this long (and 4 batches): 3 s
    /// are hundreds of batches on the small models and the 4 batches on the slow ones.
    #[arg(long, default_value_t = 3.0)]
    min_seconds: f64,
    /// Measure the variant's costs by length and merge size instead, in both layouts, and
    /// the engine policy they argue for (`<variant>.costs.json`): what `cargo xtask select`
    /// does for the variant it chose.
    #[arg(long)]
    costs: bool,
}

/// `VmRSS` and `VmHWM` (peak) of this process, in bytes; `None` where /proc is absent.
fn memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn run(args: &Args) -> Result<MeasureReport> {
    if args.batch_size == 0 || args.latency_requests == 0 {
        bail!("--batch-size and --latency-requests must be at least 1");
    }
    let entry = modelcrate_bench::CATALOG.entry(&args.model)?;
    let rows = test_split::inputs(&args.artifacts, &args.model, entry.task)?;
    let texts = rows.as_inputs();
    if texts.is_empty() {
        bail!("the test split of {} is empty", args.model);
    }
    let options = LoadOptions {
        ort_dylib: args.ort_dylib.clone(),
        variant: VariantChoice::Named(args.variant.clone()),
        layout: Layout::Fixed {
            sessions: 1,
            intra_threads: args.intra_threads,
        },
        max_batch_size: args.batch_size,
    };
    let loading = Instant::now();
    let model = modelcrate_core::catalog::load(entry, &args.artifacts, &options)?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let info = model.info().clone();
    let file = args.artifacts.join(&args.model).join("onnx").join(&info.variant.file);
    let size_bytes = std::fs::metadata(&file)
        .with_context(|| format!("cannot stat {}", file.display()))?
        .len();

    // Warm-up: the first runs allocate arenas and pick kernels for each shape.
    model.process(&texts[..args.batch_size.min(texts.len())])?;
    for text in texts.iter().take(10) {
        model.process(&[*text])?;
    }
    let rss_after_warmup = memory().map(|(rss, _)| rss);

    let mut latencies = Vec::with_capacity(args.latency_requests);
    for text in texts.iter().cycle().take(args.latency_requests) {
        let started = Instant::now();
        model.process(&[*text])?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let mean_ms = latencies.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / latencies.len() as f64;

    let mut sequences = 0usize;
    let started = Instant::now();
    // Whole batches in test-split order, round and round, for at least `min_seconds`.
    let mut batches = texts.chunks(args.batch_size).cycle();
    while sequences < MIN_THROUGHPUT_BATCHES * args.batch_size || started.elapsed().as_secs_f64() < args.min_seconds {
        let batch = batches.next().unwrap_or_default();
        model.process(batch)?;
        sequences += batch.len().max(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss = memory().map(|(_, peak)| peak);
    let side = info.image_side();

    Ok(MeasureReport {
        model: args.model.clone(),
        variant: info.variant.name,
        file: info.variant.file,
        size_bytes,
        layout: SessionLayout {
            sessions: 1,
            intra_threads: args.intra_threads,
        },
        load_seconds,
        inputs: match side {
            Some(side) => format!("test split, {} image files, prepared to {side}×{side}", texts.len()),
            None => format!(
                "test split, {} texts, truncated to {} tokens",
                texts.len(),
                info.max_length
            ),
        },
        latency: Latency {
            requests: latencies.len(),
            p50_ms: quantile_ms(&latencies, 0.50),
            p90_ms: quantile_ms(&latencies, 0.90),
            p99_ms: quantile_ms(&latencies, 0.99),
            mean_ms,
        },
        throughput: Throughput {
            batch_size: args.batch_size,
            sequences,
            seconds,
            sequences_per_second: sequences as f64 / seconds,
        },
        rss_bytes: Rss {
            after_warmup: rss_after_warmup,
            peak: peak_rss,
        },
        machine: machine(),
    })
}

/// `--costs`: the variant's costs on the adaptive layout's sessions, and its policy.
fn run_costs(args: &Args) -> Result<CostsReport> {
    let entry = modelcrate_bench::CATALOG.entry(&args.model)?;
    let rows = test_split::inputs(&args.artifacts, &args.model, entry.task)?;
    let inputs = rows.as_inputs();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let options = LoadOptions {
        ort_dylib: args.ort_dylib.clone(),
        variant: VariantChoice::Named(args.variant.clone()),
        layout: Layout::Adaptive { cores },
        max_batch_size: UNIT,
    };
    let model = modelcrate_core::catalog::load(entry, &args.artifacts, &options)?;
    let costs = costs(&model, &inputs, cores)?;
    let engine = from_costs(&costs);
    Ok(CostsReport {
        model: args.model.clone(),
        variant: model.info().variant.name.clone(),
        costs,
        engine,
        machine: machine(),
    })
}

/// Texts per run and lengths the costs are measured at: one text, a few, many; each
/// length bucket's texts run from the bucket below's bound to its own.
const COST_ROWS: [usize; 3] = [1, 4, 16];
const COST_TOKENS: [usize; 4] = [16, 32, 64, 128];
/// Texts in one unit of work: every point runs the same texts, merged as it says.
const UNIT: usize = 16;
/// Each point is timed for at least this long, and at least `MIN_POINT_RUNS` units (per
/// session, for the narrow layout), after one unit not timed.
const MIN_POINT_SECONDS: f64 = 0.3;
const MIN_POINT_RUNS: usize = 2;

/// The variant's costs at each length bucket and merge size, on the wide session alone
/// and on every narrow session at once. A point runs a unit of `UNIT` texts whose lengths
/// spread over the bucket (for images, `UNIT` images) in runs of `rows`, each run's rows
/// spread over the bucket too, as requests merged in arrival order are: what merging
/// saves is measured with the padding it costs.
fn costs(model: &Arc<dyn TaskModel>, inputs: &[Input<'_>], cores: usize) -> Result<Costs> {
    let mut units: Vec<(usize, usize, Unit)> = Vec::new();
    let first_image = inputs.first().and_then(|input| input.image().ok());
    match first_image.and_then(|bytes| {
        model
            .info()
            .prepare_image(bytes, modelcrate_runtime::image::DEFAULT_MAX_PIXELS)
    }) {
        Some(image) => {
            let image = image?;
            for rows in COST_ROWS {
                let runs = (0..UNIT / rows).map(|_| image::stack(&vec![&image; rows])).collect();
                units.push((1, rows, Unit::Images(runs)));
            }
        }
        None => {
            let text_model = model.as_ref();
            // The test split's texts end to end, cut to each length: real tokens, any length
            // (a question-answering model's contexts: a window's cost is its tokens').
            let texts: Vec<&str> = inputs
                .iter()
                .take(64)
                .map(|input| match *input {
                    Input::Question { context, .. } => Ok(context),
                    _ => input.text(),
                })
                .collect::<Result<_, _>>()?;
            let encoder = text_model.text_encoder()?;
            let long = text_model
                .encode(&[texts.join(" ").as_str()])?
                .pop()
                .context("no encoding of the test texts")?;
            let mut below = 0;
            for tokens in COST_TOKENS.into_iter().filter(|&t| t <= long.len()) {
                // UNIT lengths evenly over (below, tokens], the last one `tokens`.
                let cut: Vec<tokenizers::Encoding> = (1..=UNIT)
                    .map(|i| {
                        let mut encoding = long.clone();
                        let length = (below + (i * (tokens - below)).div_ceil(UNIT)).max(2);
                        encoding.truncate(length, 0, tokenizers::TruncationDirection::Right);
                        encoding
                    })
                    .collect();
                for rows in COST_ROWS {
                    // Run j takes every (UNIT / rows)-th text from j: each run spans the bucket.
                    let stride = UNIT / rows;
                    let runs = (0..stride)
                        .map(|j| encoder.pad(&cut.iter().skip(j).step_by(stride).collect::<Vec<_>>()))
                        .collect();
                    units.push((tokens, rows, Unit::Texts(runs)));
                }
                below = tokens;
            }
        }
    }
    let mut points = Vec::with_capacity(units.len());
    for (tokens, rows, unit) in units {
        let unit = Arc::new(unit);
        let (repeats, seconds) = timed_units(model.as_ref(), &unit, Lane::Wide)?;
        let wide_seconds = seconds / (repeats * unit.runs()) as f64;
        let narrow: Vec<_> = (0..cores)
            .map(|_| {
                let (model, unit) = (Arc::clone(model), Arc::clone(&unit));
                std::thread::spawn(move || timed_units(model.as_ref(), &unit, Lane::Narrow))
            })
            .collect();
        let mut texts_per_second = 0.0;
        for worker in narrow {
            let (repeats, seconds) = worker
                .join()
                .map_err(|_| anyhow::anyhow!("a narrow session's thread panicked"))??;
            texts_per_second += (repeats * UNIT) as f64 / seconds;
        }
        points.push(CostPoint {
            tokens,
            rows,
            wide_seconds,
            narrow_texts_per_second: texts_per_second,
        });
    }
    Ok(Costs { cores, points })
}

/// A unit of work: its runs, as a session takes them.
enum Unit {
    Texts(Vec<EncodedBatch>),
    Images(Vec<ndarray::Array4<f32>>),
}

impl Unit {
    fn runs(&self) -> usize {
        match self {
            Self::Texts(runs) => runs.len(),
            Self::Images(runs) => runs.len(),
        }
    }

    fn run(&self, model: &dyn TaskModel, lane: Lane) -> Result<()> {
        match self {
            Self::Texts(runs) => runs.iter().try_for_each(|batch| model.run_encoded(batch, lane))?,
            Self::Images(runs) => runs
                .iter()
                .try_for_each(|pixels| model.run_images(pixels, lane).map(drop))?,
        }
        Ok(())
    }
}

/// Runs `unit` on `lane` after one untimed pass, for the point's least time and passes:
/// (passes, seconds).
fn timed_units(model: &dyn TaskModel, unit: &Unit, lane: Lane) -> Result<(usize, f64)> {
    unit.run(model, lane)?;
    let started = Instant::now();
    let mut repeats = 0;
    while repeats < MIN_POINT_RUNS || started.elapsed().as_secs_f64() < MIN_POINT_SECONDS {
        unit.run(model, lane)?;
        repeats += 1;
    }
    Ok((repeats, started.elapsed().as_secs_f64()))
}

fn main() {
    let args = Args::parse();
    let result = if args.costs {
        run_costs(&args).and_then(|report| {
            json_file::write(
                &CostsReport::path(&args.artifacts.join(&args.model), &args.variant),
                &report,
            )?;
            println!(
                "costs: {} {}: {} points",
                args.model,
                args.variant,
                report.costs.points.len()
            );
            for line in report.engine.iter().flat_map(|engine| &engine.why) {
                println!("    {line}");
            }
            Ok(())
        })
    } else {
        run(&args).and_then(|report| {
            json_file::write(
                &MeasureReport::path(&args.artifacts.join(&args.model), &args.variant),
                &report,
            )?;
            println!(
                "measure: {} {}: batch 1 p50 {:.2} ms p99 {:.2} ms; batch {} {:.1} sequences/s; peak RSS {:.0} MB",
                args.model,
                args.variant,
                report.latency.p50_ms,
                report.latency.p99_ms,
                args.batch_size,
                report.throughput.sequences_per_second,
                report.rss_bytes.peak.map_or(f64::NAN, |peak| peak as f64 / 1e6),
            );
            Ok(())
        })
    };
    if let Err(error) = result {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}
