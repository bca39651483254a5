//! What the benchmarks that read the pipeline's outputs share.

use std::path::PathBuf;

/// The pipeline's `artifacts/` (or `MODELCRATE_ARTIFACTS`).
pub fn artifacts() -> PathBuf {
    std::env::var_os("MODELCRATE_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts"),
        PathBuf::from,
    )
}
