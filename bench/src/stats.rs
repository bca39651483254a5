//! Figures that `modelcrate-measure` and `modelcrate-load` report alike: latency
//! quantiles and the machine they were measured on.

use std::time::Duration;

use modelcrate_schema::Machine;

/// The machine the figures belong to.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let value = |key: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split(':').nth(1))
            .map(str::trim)
            .unwrap_or("unknown")
            .to_string()
    };
    let flags = value("flags");
    let has = |flag: &str| flags.split_whitespace().any(|f| f == flag);
    Machine {
        cpu: value("model name"),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        avx2: has("avx2"),
        avx512_vnni: has("avx512_vnni"),
    }
}

/// The `q`-quantile of sorted durations, in milliseconds (nearest rank).
pub fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&sorted, 0.50), 50.0);
        assert_eq!(quantile_ms(&sorted, 0.99), 99.0);
        assert_eq!(quantile_ms(&sorted[..1], 0.99), 1.0);
        assert!(quantile_ms(&[], 0.5).is_nan());
    }
}
