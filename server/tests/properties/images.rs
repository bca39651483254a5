//! Image bytes as clients send them, through the decoder every image route uses
//! (`modelcrate_runtime::image::decode`): any bytes are refused or decoded without a
//! panic; a file cut off anywhere before its end is refused, never guessed at; a header
//! that claims more pixels than the limit is refused before anything is decoded.

use std::path::PathBuf;
use std::sync::OnceLock;

use modelcrate_runtime::ImageError;
use modelcrate_runtime::image::decode;
use proptest::prelude::*;

use crate::common::workspace;
use crate::config;

/// The limit the properties decode under: above every golden image but the largest.
const MAX_PIXELS: u64 = 2_000_000;

/// The golden images of the image models, read once: PNGs of every colour type,
/// progressive and baseline JPEGs, tiny and wide ones.
fn golden_images() -> &'static [(String, Vec<u8>)] {
    static IMAGES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    IMAGES.get_or_init(read_golden_images)
}

fn read_golden_images() -> Vec<(String, Vec<u8>)> {
    let mut images = Vec::new();
    for model in ["animal-shapes", "animal-detect"] {
        let dir: PathBuf = workspace().join("golden").join(model).join("images");
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            // The golden truncated PNG is refused whole; the properties cut the others.
            if name.starts_with("corrupt") {
                continue;
            }
            if let Ok(bytes) = std::fs::read(entry.path()) {
                images.push((format!("{model}/{name}"), bytes));
            }
        }
    }
    images.sort();
    assert!(images.len() >= 20, "the golden images are there ({})", images.len());
    images
}

/// Where a PNG's closing IEND chunk starts: a PNG cut after it is whole, as PIL reads it.
fn png_end(bytes: &[u8]) -> usize {
    bytes.len().saturating_sub(12)
}

/// A small PNG whose header (IHDR, CRC right) claims `width`×`height` 8-bit RGB pixels,
/// with an IDAT chunk holding far too little (an empty zlib stream) and IEND: what a
/// client sends to make a server allocate a huge image.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend(width.to_be_bytes());
    header.extend(height.to_be_bytes());
    header.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter method, no interlace
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (b"IHDR", header),
        (b"IDAT", vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]),
        (b"IEND", Vec::new()),
    ] {
        let mut chunk = kind.to_vec();
        chunk.extend(&data);
        bytes.extend(u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        bytes.extend(&chunk);
        bytes.extend(crc32(&chunk).to_be_bytes());
    }
    bytes
}

/// Where the bytes that say an image's size end: a PNG's IHDR chunk; a JPEG's
/// start-of-frame segment (the first `FF C0`–`FF C2` marker, with its length).
fn size_written_by(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"\x89PNG") {
        return 33;
    }
    let frame = bytes
        .windows(4)
        .position(|w| w[0] == 0xff && (0xc0..=0xc2).contains(&w[1]))
        .unwrap_or(bytes.len());
    let length = bytes
        .get(frame + 2..frame + 4)
        .map_or(0, |l| usize::from(u16::from_be_bytes([l[0], l[1]])));
    frame + 2 + length
}

/// PNG's CRC-32 (ISO 3309), bit by bit: a few header bytes need no table.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_bytes_are_refused_or_decoded_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        if let Ok(image) = decode(&bytes, MAX_PIXELS) {
            prop_assert!(u64::from(image.width()) * u64::from(image.height()) <= MAX_PIXELS);
        }
    }

    #[test]
    fn a_file_cut_off_before_its_end_is_refused(pick in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let images = golden_images();
        let (name, bytes) = &images[pick.index(images.len())];
        let end = if name.ends_with(".png") { png_end(bytes) } else { bytes.len() - 2 };
        let at = cut.index(end);
        let answer = decode(&bytes[..at], MAX_PIXELS);
        prop_assert!(answer.is_err(), "{name} cut at byte {at} of {} was decoded as an image", bytes.len());
    }

    #[test]
    fn a_changed_byte_is_refused_or_decoded_at_the_files_size(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let images = golden_images();
        let (name, bytes) = &images[pick.index(images.len())];
        let whole = decode(bytes, MAX_PIXELS);
        prop_assume!(whole.is_ok());
        let mut changed = bytes.to_vec();
        let at = at.index(changed.len());
        changed[at] = value;
        if let (Ok(image), Ok(original)) = (decode(&changed, MAX_PIXELS), whole) {
            prop_assert!(u64::from(image.width()) * u64::from(image.height()) <= MAX_PIXELS);
            // A changed byte may change pixels (a JPEG has no checksum); the size only
            // where the size is written.
            prop_assert!(
                at < size_written_by(bytes) || (image.width(), image.height()) == (original.width(), original.height()),
                "{name} with byte {at} set to {value}: {}×{}",
                image.width(),
                image.height()
            );
        }
    }

    #[test]
    fn a_header_past_the_pixel_limit_is_refused_before_decoding(width in 1u32..100_000, height in 1u32..100_000) {
        let answer = decode(&png_claiming(width, height), MAX_PIXELS);
        if u64::from(width) * u64::from(height) > MAX_PIXELS {
            prop_assert_eq!(answer, Err(ImageError::TooLarge { width, height, max: MAX_PIXELS }));
        } else {
            prop_assert!(answer.is_err(), "a header without its pixels is not an image");
        }
    }
}
