//! `cargo xtask report`: one table of every model and variant — how it was made, its
//! parity against PyTorch, its task metric, its speed and memory here, and which serves —
//! printed, and written to `artifacts/report.md` and `artifacts/report.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::paths::Paths;
use crate::spec::ModelSpec;

/// A JSON file, or `Null` when it does not exist yet (a step that has not run).
fn optional_json(path: &Path) -> Result<Value> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is malformed", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Value::Null),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Sequence lengths (tokens) the report counts each variant's work at: a short text (the
/// bench's mixed-short workload is mostly under it) and the news models' max length.
const WORK_AT_TOKENS: [u64; 2] = [32, 128];

/// Billions of floating-point operations (a multiply-add is two) one sequence of `tokens`
/// costs in a BERT-style encoder of `layers` layers, counted from `config.json`'s sizes:
/// per layer the four attention projections (4·n·h²), the feed-forward (2·n·h·f) and the
/// attention's two n×n products (2·n²·h), in multiply-adds. Embedding lookups, norms and
/// the head are left out (under 1 % here). `None` for a model that is not such an encoder.
pub fn encoder_gflops(config: &Value, layers: u64, tokens: u64) -> Option<f64> {
    let hidden = config["hidden_size"].as_u64()?;
    let feed_forward = config["intermediate_size"].as_u64()?;
    let per_layer = tokens * (4 * hidden * hidden + 2 * hidden * feed_forward) + 2 * tokens * tokens * hidden;
    Some(2.0 * (layers * per_layer) as f64 / 1e9)
}

/// A variant's encoder layers: a student's kept layers, else the config's.
fn layers(config: &Value, variant: &Value) -> Option<u64> {
    match variant["student"]["kept_layers"].as_array() {
        Some(kept) => Some(kept.len() as u64),
        None => config["num_hidden_layers"].as_u64(),
    }
}

/// Everything known of one model's variants, as the JSON report holds it.
fn model_report(paths: &Paths, spec: &ModelSpec) -> Result<Value> {
    let art = paths.artifact(&spec.name);
    let onnx = paths.onnx(&spec.name);
    let config = optional_json(&onnx.join("config.json"))?;
    let serving = optional_json(&onnx.join("serving.json"))?;
    let listed: Vec<Value> = crate::variant_check::listed_variants(paths, &spec.name)?
        .unwrap_or_else(|| vec![json!({"name": "fp32", "kind": "fp32", "made": true, "file": "model.onnx"})]);
    let mut variants = Vec::new();
    // Every measurement records the machine it ran on; the first one found stands for all.
    let mut machine = Value::Null;
    for variant in listed {
        let name = variant["name"].as_str().unwrap_or("?").to_string();
        let layers = layers(&config, &variant);
        let parity = optional_json(&art.join("parity").join(format!("{name}.json")))?;
        let bench = optional_json(&art.join("bench").join(format!("{name}.json")))?;
        if machine.is_null() {
            machine = bench["machine"].clone();
        }
        variants.push(json!({
            "name": name,
            "kind": variant["kind"],
            "made": variant["made"],
            "how": variant["how"],
            "why_not_made": variant["why"],
            "file": variant["file"],
            "size_bytes": variant["size_bytes"],
            "nodes": variant["nodes"],
            "fused": variant["fused"],
            "student": variant["student"],
            "layers": layers,
            "gflops_per_sequence": layers.map(|layers| {
                WORK_AT_TOKENS
                    .iter()
                    .map(|&tokens| (tokens.to_string(), json!(encoder_gflops(&config, layers, tokens))))
                    .collect::<serde_json::Map<_, _>>()
            }),
            "parity": {
                "gate": parity["gate"],
                "passed": parity["passed"],
                "failures": parity["failures"],
                "drift": parity["summary"]["drift"],
                "golden": parity["summary"]["golden"],
                "test_agreement": parity["summary"]["test_agreement"],
            },
            "metric": parity["metric"],
            "latency": bench["latency"],
            "throughput": bench["throughput"],
            "rss_bytes": bench["rss_bytes"],
            "layout": bench["layout"],
            "load_seconds": bench["load_seconds"],
            "selected": serving["variant"].as_str() == Some(name.as_str()),
        }));
    }
    Ok(json!({
        "model": spec.name,
        "task": spec.task,
        "policy": spec.serve.policy,
        "serving": serving,
        "machine": machine,
        "int8_config": optional_json(&onnx.join("variants.json"))?["int8_config"],
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
        "| variant | layers | GFLOP/seq at 32 / 128 tokens | size MB | nodes | fused ops | gate | passed | {} | golden {} | test {metric_name} (Δ pt vs fp32) | test {} agreement | p50 ms, batch 1 | p99 ms, batch 1 | seq/s, batch 32 (× fp32) | peak RSS MB | load s | serves |",
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
        let work = WORK_AT_TOKENS
            .iter()
            .map(|tokens| figure(&v["gflops_per_sequence"][tokens.to_string()], |g| format!("{g:.2}")))
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
            if v["selected"] == true { "**yes**" } else { "" },
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
    for model in &models {
        text.push_str(&markdown(model));
        text.push('\n');
    }
    let artifacts = paths.artifacts();
    std::fs::create_dir_all(&artifacts).with_context(|| format!("cannot create {}", artifacts.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoders_work_is_counted_from_its_sizes_and_a_students_layers() {
        let config = json!({"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6});
        // MiniLM-L6 at 128 tokens: 6 × (128 × (4·384² + 2·384·1536) + 2·128²·384) multiply-adds.
        let teacher = encoder_gflops(&config, 6, 128).unwrap();
        assert!((teacher - 2.868_903_936).abs() < 1e-9, "{teacher}");
        let student = json!({"student": {"kept_layers": [1, 3, 5], "teacher_layers": 6}});
        assert_eq!(layers(&config, &student), Some(3));
        assert_eq!(layers(&config, &json!({"name": "int8"})), Some(6));
        assert_eq!(encoder_gflops(&config, 3, 128).unwrap() * 2.0, teacher);
        assert_eq!(encoder_gflops(&json!({"num_classes": 10}), 1, 32), None);
    }
}
