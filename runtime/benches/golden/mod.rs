//! What the benchmarks of image work share: the committed golden images.

use std::path::PathBuf;

/// The bytes of `golden/animal-shapes/images/<name>`.
pub fn image(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../golden/animal-shapes/images")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}
