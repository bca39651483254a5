//! `cargo xtask report`: one table of every model and variant — how it was made, its
//! parity against PyTorch, its task metric, its speed and memory here, and which serves —
//! printed, and written to `artifacts/report.md` and `artifacts/report.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use modelcrate_schema::{MeasureReport, ParityReport, SERVING_FILE, Serving, VARIANTS_FILE, Variant, Variants};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::chart::{self, Point};
use crate::paths::Paths;
use crate::spec::ModelSpec;
use crate::work::{Encoder, WORK_AT_TOKENS, kept_layers, layers};

/// A JSON file of the shape `T`, or `None` when it does not exist yet (a step that has
/// not run).
fn optional<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("{} is malformed", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Everything known of one model's variants, as the JSON report holds it.
fn model_report(paths: &Paths, spec: &ModelSpec) -> Result<Value> {
    let art = paths.artifact(&spec.name);
    let onnx = paths.onnx(&spec.name);
    let config: Value = optional(&onnx.join("config.json"))?.unwrap_or(Value::Null);
    let serving: Option<Serving> = optional(&onnx.join(SERVING_FILE))?;
    let listed =
        crate::variant_check::listed_variants(paths, &spec.name)?.unwrap_or_else(|| vec![Variant::fp32_export()]);
    let mut variants = Vec::new();
    // Every measurement records the machine it ran on; the first one found stands for all.
    let mut machine = None;
    for variant in listed {
        let name = &variant.name;
        let kept = kept_layers(&variant);
        let encoder = Encoder::of(&config, kept);
        let parity: Option<ParityReport> = optional(&ParityReport::path(&art, name))?;
        let bench: Option<MeasureReport> = optional(&MeasureReport::path(&art, name))?;
        if machine.is_none() {
            machine = bench.as_ref().map(|bench| bench.machine.clone());
        }
        // Why `select` did or did not choose it (`serving.json`'s candidates).
        let verdict = serving
            .iter()
            .flat_map(|serving| &serving.candidates)
            .find(|candidate| &candidate.name == name)
            .map(|candidate| &candidate.verdict);
        variants.push(json!({
            "name": name,
            "kind": variant.kind,
            "made": variant.made,
            "how": variant.how,
            "why_not_made": variant.why,
            "file": variant.file,
            "size_bytes": variant.size_bytes,
            "nodes": variant.nodes,
            "fused": variant.fused,
            "student": variant.student,
            "layers": layers(&config, kept),
            "gop_per_sequence": encoder.map(|encoder| encoder.gop_at_work_lengths()),
            "parity": {
                "gate": parity.as_ref().map(|p| p.gate),
                "passed": parity.as_ref().map(|p| p.passed),
                "failures": parity.as_ref().map(|p| &p.failures),
                "drift": parity.as_ref().map(|p| &p.summary.drift),
                "golden": parity.as_ref().map(|p| &p.summary.golden),
                "test_agreement": parity.as_ref().map(|p| &p.summary.test_agreement),
            },
            "metric": parity.as_ref().map(|p| &p.metric),
            "latency": bench.as_ref().map(|b| b.latency),
            "throughput": bench.as_ref().map(|b| b.throughput),
            "rss_bytes": bench.as_ref().map(|b| b.rss_bytes),
            "layout": bench.as_ref().map(|b| b.layout),
            "load_seconds": bench.as_ref().map(|b| b.load_seconds),
            "selected": serving.as_ref().is_some_and(|serving| &serving.variant == name),
            "verdict": verdict,
        }));
    }
    let int8_config = optional::<Variants>(&onnx.join(VARIANTS_FILE))?.and_then(|variants| variants.int8_config);
    Ok(json!({
        "model": spec.name,
        "task": spec.task,
        "policy": spec.serve.policy,
        "serving": serving,
        "machine": machine,
        "int8_config": int8_config,
        "variants": variants,
    }))
}

fn figure(value: &Value, format: impl Fn(f64) -> String) -> String {
    value.as_f64().map_or_else(|| "—".into(), format)
}

/// The Markdown table of one model.
fn markdown(model: &Value) -> String {
    let variants = model["variants"].as_array().cloned().unwrap_or_default();
    let fp32 = variants.iter().find(|v| v["name"] == "fp32");
    let fp32_metric = fp32.and_then(|v| v["metric"]["value"].as_f64());
    let made = || variants.iter().filter(|v| v["made"] == true);
    let heading = |field: &str, fallback: &str| {
        made()
            .find_map(|v| v["parity"][field]["name"].as_str().map(str::to_string))
            .unwrap_or_else(|| fallback.to_string())
            .replace('|', "\\|")
    };
    let metric_name = made()
        .find_map(|v| v["metric"]["name"].as_str().map(str::to_string))
        .unwrap_or_else(|| "metric".into());
    let fp32_throughput = fp32.and_then(|v| v["throughput"]["sequences_per_second"].as_f64());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### {} ({})\n",
        model["model"].as_str().unwrap_or("?"),
        model["task"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        out,
        "| variant | layers | GOP/seq at 32 / 128 tokens | size MB | nodes | fused ops | gate | passed | {} | golden {} | test {metric_name} (Δ pt vs fp32) | test {} agreement | p50 ms, batch 1 | p99 ms, batch 1 | seq/s, batch 32 (× fp32) | peak RSS MB | load s | serves, or why not |",
        heading("drift", "drift"),
        heading("golden", "agreement"),
        heading("test_agreement", "top-1"),
    );
    let _ = writeln!(
        out,
        "|---|--:|--:|--:|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
    );
    for v in &variants {
        let name = v["name"].as_str().unwrap_or("?");
        if v["made"] != true {
            let _ = writeln!(
                out,
                "| {name} | not made: {} | | | | | | | | | | | | | | | | |",
                v["why_not_made"]
                    .as_str()
                    .unwrap_or("no reason recorded")
                    .replace('|', "\\|")
            );
            continue;
        }
        let fused = v["fused"]
            .as_object()
            .map(|ops| {
                ops.iter()
                    .map(|(op, n)| format!("{op} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "—".into());
        let parity = &v["parity"];
        let count = |of: &Value| match (of["agree"].as_u64(), of["of"].as_u64()) {
            (Some(agree), Some(all)) => format!("{agree}/{all}"),
            _ => "—".into(),
        };
        let golden = count(&parity["golden"]);
        // A distilled student's variant says what it kept; its Δ is against the teacher's fp32.
        let student = &v["student"];
        let name = match (student["kept_layers"].as_array(), student["teacher_layers"].as_u64()) {
            (Some(kept), Some(of)) => format!("{name} ({} of {of} layers)", kept.len()),
            _ => name.to_string(),
        };
        let metric = figure(&v["metric"]["value"], |m| match fp32_metric {
            Some(base) if name != "fp32" => format!("{m:.4} ({:+.2})", (m - base) * 100.0),
            _ => format!("{m:.4}"),
        });
        let agreement = count(&parity["test_agreement"]);
        let throughput = figure(&v["throughput"]["sequences_per_second"], |t| match fp32_throughput {
            Some(base) if base > 0.0 => format!("{t:.1} ({:.2}×)", t / base),
            _ => format!("{t:.1}"),
        });
        let passed = match parity["passed"].as_bool() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        let verdict = match v["verdict"].as_str() {
            _ if v["selected"] == true => "**serves**".to_string(),
            Some(failed) if failed.starts_with("fails its") => "fails its gate (below)".into(),
            Some(verdict) => verdict.replace('|', "\\|"),
            None => String::new(),
        };
        let work = WORK_AT_TOKENS
            .iter()
            .map(|tokens| figure(&v["gop_per_sequence"][tokens.to_string()], |g| format!("{g:.2}")))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            out,
            "| {name} | {} | {work} | {} | {} | {fused} | {} | {passed} | {} | {golden} | {metric} | {agreement} | {} | {} | {throughput} | {} | {} | {} |",
            figure(&v["layers"], |l| format!("{l:.0}")),
            figure(&v["size_bytes"], |b| format!("{:.1}", b / 1e6)),
            figure(&v["nodes"], |n| format!("{n:.0}")),
            parity["gate"].as_str().unwrap_or("—"),
            figure(&parity["drift"]["value"], |d| if d.abs() >= 0.01 && d.abs() < 1.0 {
                format!("{d:.6}")
            } else {
                format!("{d:.2e}")
            }),
            figure(&v["latency"]["p50_ms"], |ms| format!("{ms:.2}")),
            figure(&v["latency"]["p99_ms"], |ms| format!("{ms:.2}")),
            figure(&v["rss_bytes"]["peak"], |b| format!("{:.0}", b / 1e6)),
            figure(&v["load_seconds"], |s| format!("{s:.2}")),
            verdict,
        );
    }
    let serving = &model["serving"];
    let _ = writeln!(
        out,
        "\nServes: **{}** (policy `{}`): {}",
        serving["variant"]
            .as_str()
            .unwrap_or("nothing selected yet (run `cargo xtask select`)"),
        model["policy"].as_str().unwrap_or("?"),
        serving["reason"].as_str().unwrap_or("—")
    );
    for v in variants.iter().filter(|v| v["parity"]["passed"] == false) {
        let failures: Vec<&str> = v["parity"]["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let _ = writeln!(
            out,
            "\n{} fails its gate and never serves: {}",
            v["name"].as_str().unwrap_or("?"),
            failures.join("; ")
        );
    }
    out
}

/// The chart of each measured variant's speed (texts/s at batch 32, one thread) against its
/// test metric, the serving one marked; `None` when fewer than two were measured.
fn speed_against_metric(model: &Value) -> Result<Option<String>> {
    let points: Vec<Point> = model["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            Some(Point {
                label: v["name"].as_str()?.to_string(),
                x: v["throughput"]["sequences_per_second"].as_f64()?,
                y: v["metric"]["value"].as_f64()?,
                marked: v["selected"] == true,
            })
        })
        .collect();
    if points.len() < 2 {
        return Ok(None);
    }
    let metric = model["variants"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|v| v["metric"]["name"].as_str())
        .unwrap_or("test metric");
    let title = format!(
        "{}: each variant's speed and test {metric}",
        model["model"].as_str().unwrap_or("?")
    );
    chart::points(
        &title,
        "inputs/s at batch 32, one thread",
        &format!("test {metric}"),
        &points,
    )
    .map(Some)
}

pub fn write(paths: &Paths, specs: &[ModelSpec]) -> Result<()> {
    let models = specs
        .iter()
        .map(|spec| model_report(paths, spec))
        .collect::<Result<Vec<_>>>()?;
    let machine = models
        .iter()
        .map(|m| &m["machine"])
        .find(|m| !m.is_null())
        .cloned()
        .unwrap_or(Value::Null);
    let mut text = String::from("# Modelcrate: every model and variant\n\n");
    let _ = writeln!(
        text,
        "Machine: {}, {} cores (AVX2 {}, AVX-512 VNNI {}). Speed is measured through the generated crate, one \
         session with one intra-op thread, on each model's test split; ratios are to FP32 in the same run.\n",
        machine["cpu"].as_str().unwrap_or("unknown"),
        machine["cores"],
        machine["avx2"],
        machine["avx512_vnni"],
    );
    let artifacts = paths.artifacts();
    let charts = artifacts.join("report");
    std::fs::create_dir_all(&charts).with_context(|| format!("cannot create {}", charts.display()))?;
    for model in &models {
        text.push_str(&markdown(model));
        if let Some(svg) = speed_against_metric(model)? {
            let file = format!("{}.svg", model["model"].as_str().unwrap_or("model"));
            std::fs::write(charts.join(&file), svg)?;
            let _ = writeln!(text, "\n![each variant's speed against its test metric](report/{file})");
        }
        text.push('\n');
    }
    let json_path = artifacts.join("report.json");
    let md_path = artifacts.join("report.md");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json!({"machine": machine, "models": models}))? + "\n",
    )
    .with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(&md_path, &text).with_context(|| format!("cannot write {}", md_path.display()))?;
    println!("{text}");
    eprintln!(
        "    written: {} and {}",
        paths.relative(&md_path).display(),
        paths.relative(&json_path).display()
    );
    Ok(())
}
