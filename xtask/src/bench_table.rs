//! The bench's tables: every peer and level of one model and workload, with ratios to the
//! Python ONNX Runtime peer (same file, and equal quality when a student serves), to the
//! ceiling, and to this CPU's INT8 peak; then the open-loop levels and the ceiling's layouts.

use serde_json::Value;

use crate::bench_limit::fraction_of_peak;

pub fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// Milliseconds as the tables show them; `—` for a quantile of no answers.
fn ms(value: &Value) -> String {
    value.as_f64().map_or_else(|| "—".to_string(), |ms| format!("{ms:.2}"))
}

/// The table of every peer and level, with ratios to the Python ONNX Runtime peer at the
/// same concurrency and to the ceiling.
pub fn table(report: &Value) -> String {
    let peers = report["peers"].as_array().cloned().unwrap_or_default();
    let baseline = peers
        .iter()
        .find(|p| p["peer"].as_str().is_some_and(|n| n.contains("onnxruntime")));
    // When a student serves: the Python peer on the teacher's variant (equal quality).
    let equal_quality = peers
        .iter()
        .find(|p| p["peer"].as_str().is_some_and(|n| n.contains("equal quality")));
    // A peer's requests/s at a level.
    let rps_at = |peer: Option<&Value>, concurrency: &Value| {
        peer.and_then(|p| p["levels"].as_array())
            .and_then(|levels| levels.iter().find(|l| &l["concurrency"] == concurrency))
            .map(|l| number(&l["requests_per_second"]))
    };
    let ceiling = number(&report["ceiling"]["best_sequences_per_second"]);
    let machine = &report["machine"];
    let workload = &report["workload"];
    let words = &workload["words"];
    let mut out = format!(
        "# `cargo xtask bench`: {}, {} workload ({}; {}, `{}`)\n\nWorkload: {}; {} texts, words per text p10 {} / p50 {} / p90 {} (mean {:.1}).\n\nMachine: {}, {} cores (AVX2 {}, AVX-512 VNNI {}); thread budget {} per peer; {} s per level, one text per request.\n\nClosed loop: each client sends its next text when its answer comes.\n\n",
        report["model"].as_str().unwrap_or("?"),
        workload["name"].as_str().unwrap_or("?"),
        report["task"].as_str().unwrap_or("?"),
        report["variant"].as_str().unwrap_or("?"),
        report["file"].as_str().unwrap_or("?"),
        workload["description"].as_str().unwrap_or("?"),
        workload["texts"],
        words["p10"],
        words["p50"],
        words["p90"],
        number(&words["mean"]),
        machine["cpu"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["avx2"],
        machine["avx512_vnni"],
        report["thread_budget"],
        report["seconds_per_level"],
    );
    let equal_column = if equal_quality.is_some() {
        (" × Python, equal quality |", "--:|")
    } else {
        ("", "")
    };
    out.push_str(&format!(
        "Each peer's row says what it serves and that file's test {} (parity's figure).\n\n",
        peers
            .first()
            .and_then(|p| p["test_metric"]["name"].as_str())
            .unwrap_or("metric")
    ));
    out.push_str(&format!(
        "| peer | serves (test metric) | concurrency | requests/s | × Python ORT, same file |{} × ceiling | × INT8 peak | p50 ms | p90 ms | p99 ms | shed (429) | errors | peak RSS MB |\n",
        equal_column.0
    ));
    out.push_str(&format!(
        "|---|---|--:|--:|--:|{}--:|--:|--:|--:|--:|--:|--:|--:|\n",
        equal_column.1
    ));
    for peer in &peers {
        let rss = peer["peak_rss_bytes"]
            .as_f64()
            .map_or("?".into(), |b| format!("{:.0}", b / 1e6));
        let serves = format!(
            "{} ({})",
            peer["serves"].as_str().unwrap_or("?"),
            peer["test_metric"]["value"]
                .as_f64()
                .map_or("?".into(), |m| format!("{m:.4}"))
        );
        for level in peer["levels"].as_array().into_iter().flatten() {
            let rps = number(&level["requests_per_second"]);
            let versus = rps_at(baseline, &level["concurrency"]).map_or("—".into(), |b| format!("{:.2}×", rps / b));
            let equal = match rps_at(equal_quality, &level["concurrency"]) {
                Some(b) => format!(" {:.2}× |", rps / b),
                None if equal_quality.is_some() => " — |".into(),
                None => String::new(),
            };
            let of_peak = peer["gop_per_sequence"]
                .as_f64()
                .and_then(|gop| fraction_of_peak(rps, gop, &report["peak"]))
                .map_or("—".into(), |f| format!("{f:.2}"));
            out.push_str(&format!(
                "| {} | {serves} | {} | {rps:.1} | {versus} |{equal} {:.2} | {of_peak} | {} | {} | {} | {} | {} | {rss} |\n",
                peer["peer"].as_str().unwrap_or("?"),
                level["concurrency"],
                rps / ceiling,
                ms(&level["p50_ms"]),
                ms(&level["p90_ms"]),
                ms(&level["p99_ms"]),
                level["shed"],
                level["errors"],
            ));
        }
    }
    let open: Vec<(&Value, &Value)> = peers
        .iter()
        .flat_map(|peer| {
            peer["open_loop"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |level| (peer, level))
        })
        .collect();
    if !open.is_empty() {
        out.push_str(&format!(
            "\nOpen loop: requests arrive at a fixed mean rate (Poisson, the same arrivals for every peer), set at {} of the ceiling's best sequences/s; latency counts from each request's scheduled arrival.\n\n",
            report["open_loop_fractions_of_ceiling"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| format!("{:.0} %", number(f) * 100.0))
                .collect::<Vec<_>>()
                .join(" and ")
        ));
        out.push_str(
            "| peer | offered req/s | answered req/s | p50 ms | p90 ms | p99 ms | shed (429) | errors | dropped |\n",
        );
        out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for (peer, level) in open {
            out.push_str(&format!(
                "| {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} |\n",
                peer["peer"].as_str().unwrap_or("?"),
                number(&level["offered_per_second"]),
                number(&level["requests_per_second"]),
                ms(&level["p50_ms"]),
                ms(&level["p90_ms"]),
                ms(&level["p99_ms"]),
                level["shed"],
                level["errors"],
                level["dropped"],
            ));
        }
    }
    out.push_str(&format!(
        "\nCeiling: ONNX Runtime alone on pre-tokenized, length-sorted batches (no HTTP, no tokenization), sequences/s for each layout of the thread budget; the ratios above use the best, {ceiling:.1}. Tokenizing one text takes {:.2} ms.\n\n",
        number(&report["ceiling"]["single_tokenization_p50_ms"]),
    ));
    out.push_str(&limit(report));
    for layout in report["ceiling_layouts"].as_array().into_iter().flatten() {
        let batches: Vec<String> = layout["batches"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("batch {}: {:.1}", b["batch_size"], number(&b["sequences_per_second"])))
            .collect();
        out.push_str(&format!(
            "- {} session(s) × {} thread(s): {}; one text alone {:.2} ms (p50)\n",
            layout["layout"]["sessions"],
            layout["layout"]["intra_threads"],
            batches.join(", "),
            number(&layout["single_inference_p50_ms"]),
        ));
    }
    out
}

/// The paragraph on the physical limit: this CPU's matrix-product peaks, the work of one of
/// the workload's sequences in what each peer serves, and the rate that bounds.
fn limit(report: &Value) -> String {
    let peak = &report["peak"];
    let int8 = number(&peak["int8"]["gop_per_second"]);
    let tokens = &report["ceiling"]["tokens"];
    let mut works: Vec<String> = Vec::new();
    for peer in report["peers"].as_array().into_iter().flatten() {
        let (Some(serves), Some(gop)) = (peer["serves"].as_str(), peer["gop_per_sequence"].as_f64()) else {
            continue;
        };
        let work = format!("{serves} {gop:.3} GOP (at most {:.0} sequences/s)", int8 / gop);
        if !works.contains(&work) {
            works.push(work);
        }
    }
    let works = if works.is_empty() {
        "not counted (the model is not a BERT-style encoder)".to_string()
    } else {
        works.join(", ")
    };
    format!(
        "Physical limit: ONNX Runtime's INT8 matrix product ({}, {}×{}×{}, {} threads) runs at {int8:.1} GOP/s here, its FP32 one at {:.1} GOP/s (a multiply-add is two operations). One sequence of this workload (mean {:.1} tokens, no padding) costs {works}; `× INT8 peak` is each row's useful operations per second against it (norms, softmax, quantizing activations and the FP32 parts of a quantized graph are work the count leaves out, and a served request also tokenizes and travels over HTTP: no peer reaches 1.0).\n\n",
        peak["int8"]["operator"].as_str().unwrap_or("?"),
        peak["int8"]["shape"][0],
        peak["int8"]["shape"][1],
        peak["int8"]["shape"][2],
        peak["threads"],
        number(&peak["fp32"]["gop_per_second"]),
        number(&tokens["mean"]),
    )
}
