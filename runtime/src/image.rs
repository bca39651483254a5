//! Image preprocessing exactly as torchvision's evaluation transform computes it on a PIL
//! image: decode, convert to RGB, resize the shorter side with PIL's antialiased bilinear
//! filter, center-crop, scale to [0, 1], normalise, lay out as NCHW.
//!
//! PIL resamples 8-bit images in fixed point (22 fractional bits) in two passes, rounding
//! to 8 bits after each: horizontal then vertical, except (Pillow 13, the lock's) where the
//! height shrinks by more than twice what the width does, which runs the vertical pass
//! first. [`resize_crop`] does the same arithmetic in the same order, so PNG inputs give
//! the very pixels Python gives. JPEG decoders may differ
//! by a level here and there (PIL uses libjpeg-turbo, the `image` crate zune-jpeg): the
//! parity check measures it on the golden JPEGs. Only the output pixels inside the crop
//! are computed: an extreme aspect ratio costs what its crop costs.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits, RgbImage};
use ndarray::{Array3, Array4, ArrayView3, s};

/// What can be wrong with an image a user sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the body is empty: send the bytes of a PNG or JPEG image")]
    Empty,
    #[error(
        "the bytes are not a PNG or JPEG image (their first bytes are {0}); the supported formats are PNG and JPEG"
    )]
    UnsupportedFormat(String),
    #[error("the {format} image cannot be decoded: {message}")]
    Undecodable { format: &'static str, message: String },
    #[error(
        "the JPEG image is cut off: its bytes end before the end-of-image marker (FF D9), as a partial upload's do; send the whole file"
    )]
    Truncated,
    #[error("the image is {width}×{height} pixels; at most {max} pixels are accepted (--max-image-pixels)")]
    TooLarge { width: u32, height: u32, max: u64 },
    #[error("the image has no pixels ({width}×{height})")]
    NoPixels { width: u32, height: u32 },
}

/// torchvision's evaluation transform, as a generated crate records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocessing {
    /// The shorter side is resized to this (the longer keeps the aspect ratio).
    pub resize_shortest: u32,
    /// Side of the centred square cut out after resizing: the model's input size.
    pub crop: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// The largest image accepted, in pixels, unless configured otherwise: 40 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// The format of `bytes` by its signature: PNG and JPEG only.
fn sniff(bytes: &[u8]) -> Result<ImageFormat, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(ImageFormat::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Ok(ImageFormat::Jpeg)
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Err(ImageError::UnsupportedFormat(head.join(" ")))
    }
}

/// Decodes a PNG or JPEG and converts it to RGB as PIL's `convert("RGB")` does: gray is
/// repeated over the channels, alpha is dropped (not composited), palettes are expanded.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, ImageError> {
    let format = sniff(bytes)?;
    let name = match format {
        ImageFormat::Png => "PNG",
        _ => "JPEG",
    };
    let undecodable = |error: image::ImageError| ImageError::Undecodable {
        format: name,
        message: error.to_string(),
    };
    // The JPEG decoder fills what a cut-off file lacks with gray and answers; PIL refuses
    // the file ("image file is truncated"), and a guess is not an answer. (A PNG cut
    // inside its pixel data fails in the decoder; only its closing IEND chunk may be
    // missing, which PIL accepts too.)
    if format == ImageFormat::Jpeg && !jpeg_reaches_its_end(bytes) {
        return Err(ImageError::Truncated);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader.into_dimensions().map_err(undecodable)?;
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            max: max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::NoPixels { width, height });
    }
    reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    // Room for the decoded image at 16 bits per channel with alpha, and nothing more.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    let image = reader.decode().map_err(undecodable)?;
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// Whether a JPEG stream reaches its end-of-image marker: segments are walked by their
/// lengths, and the entropy-coded data after each start-of-scan is skipped up to the next
/// marker (`FF 00` is a stuffed byte and `FF D0`–`FF D7` restart markers are part of the
/// data), so an `FF D9` inside a segment (an EXIF thumbnail's) does not count. Bytes after
/// the marker are ignored, as PIL ignores them.
fn jpeg_reaches_its_end(bytes: &[u8]) -> bool {
    const END_OF_IMAGE: u8 = 0xd9;
    const START_OF_SCAN: u8 = 0xda;
    let mut at = 2; // after the start-of-image marker `FF D8`
    loop {
        // A marker: one or more `FF` (fill bytes), then its code.
        if bytes.get(at) != Some(&0xff) {
            return false;
        }
        while bytes.get(at) == Some(&0xff) {
            at += 1;
        }
        let Some(&code) = bytes.get(at) else {
            return false;
        };
        at += 1;
        match code {
            END_OF_IMAGE => return true,
            // Markers without a length: restarts, TEM, a stray start-of-image.
            0xd0..=0xd8 | 0x01 => continue,
            _ => {}
        }
        let (Some(&high), Some(&low)) = (bytes.get(at), bytes.get(at + 1)) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length < 2 || at + length > bytes.len() {
            return false;
        }
        at += length;
        if code == START_OF_SCAN {
            // Entropy-coded data runs to the first `FF` followed by a marker code.
            loop {
                match (bytes.get(at), bytes.get(at + 1)) {
                    (Some(0xff), Some(0x00 | 0xd0..=0xd7)) => at += 2,
                    (Some(0xff), Some(_)) => break,
                    (Some(_), _) => at += 1,
                    (None, _) => return false,
                }
            }
        }
    }
}

/// torchvision's `Resize(size)` output size for a `width`×`height` image: the shorter
/// side becomes `size`, the longer `int(size * long / short)` (truncated, as Python's
/// `int` of a float division).
pub fn resized_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = (f64::from(size) * f64::from(long) / f64::from(short)) as u32;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// torchvision's `center_crop` offset: `int(round((size - crop) / 2.0))`, Python's
/// round half to even.
pub fn crop_offset(size: u32, crop: u32) -> u32 {
    let half = (f64::from(size) - f64::from(crop)) / 2.0;
    half.round_ties_even().max(0.0) as u32
}

/// PIL's fixed-point precision for 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// One pass of PIL's resampling along an axis: for each output position in `window`,
/// the first input index and the fixed-point weights of the inputs it reads.
struct Coefficients {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

impl Coefficients {
    /// PIL's `precompute_coeffs` for the bilinear (triangle) filter, then
    /// `normalize_coeffs_8bpc`, for the outputs in `window` of `out_size`.
    fn bilinear(in_size: u32, out_size: u32, window: std::ops::Range<u32>) -> Self {
        let scale = f64::from(in_size) / f64::from(out_size);
        let filter_scale = scale.max(1.0);
        let support = filter_scale; // the triangle's support is 1
        let mut first = Vec::with_capacity(window.len());
        let mut weights = Vec::with_capacity(window.len());
        for out in window {
            let center = (f64::from(out) + 0.5) * scale;
            // C's `(int)` truncates toward zero; the result is clamped to 0 anyway.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size));
            let raw: Vec<f64> = (xmin..xmax)
                .map(|x| {
                    let distance = ((x as f64 - center + 0.5) / filter_scale).abs();
                    if distance < 1.0 { 1.0 - distance } else { 0.0 }
                })
                .collect();
            let total: f64 = raw.iter().sum();
            let fixed = raw
                .iter()
                .map(|&w| {
                    let normalized = if total != 0.0 { w / total } else { w };
                    let scaled = normalized * f64::from(1u32 << PRECISION_BITS);
                    (if scaled < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
                })
                .collect();
            first.push(xmin as usize);
            weights.push(fixed);
        }
        Self { first, weights }
    }

    /// The input range the outputs read: `[start, end)`.
    fn span(&self) -> (usize, usize) {
        let start = self.first.iter().copied().min().unwrap_or(0);
        let end = self
            .first
            .iter()
            .zip(&self.weights)
            .map(|(&first, weights)| first + weights.len())
            .max()
            .unwrap_or(0);
        (start, end)
    }
}

/// PIL's `clip8`: the rounded fixed-point sum to a byte.
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

fn weighted(pixels: impl Iterator<Item = u8>, weights: &[i32]) -> u8 {
    let mut sum = 1i32 << (PRECISION_BITS - 1);
    for (pixel, &weight) in pixels.zip(weights) {
        sum += i32::from(pixel) * weight;
    }
    clip8(sum)
}

/// Resizes `image` to torchvision's size for `resize_shortest` with PIL's bilinear filter
/// and returns the centred `crop`×`crop` square of the result: the pixels torchvision's
/// `CenterCrop(crop)(Resize(resize_shortest)(image))` gives, as `[crop, crop, 3]`.
pub fn resize_crop(image: &RgbImage, resize_shortest: u32, crop: u32) -> Array3<u8> {
    let (width, height) = image.dimensions();
    let (new_width, new_height) = resized_size(width, height, resize_shortest);
    let (left, top) = (crop_offset(new_width, crop), crop_offset(new_height, crop));
    resample(
        image,
        (new_width, new_height),
        Coefficients::bilinear(width, new_width, left..left + crop.min(new_width)),
        Coefficients::bilinear(height, new_height, top..top + crop.min(new_height)),
    )
}

/// `image.resize((width, height), Image.Resampling.BILINEAR)` of PIL, as `[height, width, 3]`.
pub fn resize(image: &RgbImage, width: u32, height: u32) -> Array3<u8> {
    let (in_width, in_height) = image.dimensions();
    resample(
        image,
        (width, height),
        Coefficients::bilinear(in_width, width, 0..width),
        Coefficients::bilinear(in_height, height, 0..height),
    )
}

/// Whether Pillow resamples an `input` image to `output` vertically first: when the height
/// shrinks by more than twice as many pixels as the width (`ImagingResampleInner`, Pillow 13).
/// The order changes the 8-bit rounding between the passes, so it must be Pillow's.
fn vertical_first(input: (u32, u32), output: (u32, u32)) -> bool {
    let shrink = |from: u32, to: u32| i64::from(from) - i64::from(to);
    let (width, height) = (shrink(input.0, output.0), shrink(input.1, output.1));
    height > 0 && height > width * 2
}

/// PIL's two passes, each rounded to 8 bits, in Pillow's order for a resize to `size`:
/// the outputs that `columns` and `rows` describe (a window of that size, for a crop).
/// The first pass covers only the input the second reads.
fn resample(image: &RgbImage, size: (u32, u32), columns: Coefficients, rows: Coefficients) -> Array3<u8> {
    let (width, height) = image.dimensions();
    let source = ArrayView3::from_shape((height as usize, width as usize, 3), image.as_raw())
        .unwrap_or_else(|_| unreachable!("an RgbImage holds height × width × 3 bytes"));
    if vertical_first((width, height), size) {
        let (start, end) = columns.span();
        let vertical = vertical_pass(source.slice(s![.., start..end, ..]), &rows, 0);
        horizontal_pass(vertical.view(), &columns, start)
    } else {
        let (start, end) = rows.span();
        let horizontal = horizontal_pass(source.slice(s![start..end, .., ..]), &columns, 0);
        vertical_pass(horizontal.view(), &rows, start)
    }
}

/// One horizontal pass over every row of `input`, whose first column is column `offset`
/// of what `columns` indexes.
fn horizontal_pass(input: ArrayView3<'_, u8>, columns: &Coefficients, offset: usize) -> Array3<u8> {
    let mut out = Array3::<u8>::zeros((input.dim().0, columns.first.len(), 3));
    for (in_row, mut out_row) in input.outer_iter().zip(out.outer_iter_mut()) {
        for (x, (first, weights)) in columns.first.iter().zip(&columns.weights).enumerate() {
            let first = first - offset;
            for channel in 0..3 {
                let pixels = (0..weights.len()).map(|k| in_row[[first + k, channel]]);
                out_row[[x, channel]] = weighted(pixels, weights);
            }
        }
    }
    out
}

/// One vertical pass over every column of `input`, whose first row is row `offset` of
/// what `rows` indexes.
fn vertical_pass(input: ArrayView3<'_, u8>, rows: &Coefficients, offset: usize) -> Array3<u8> {
    let mut out = Array3::<u8>::zeros((rows.first.len(), input.dim().1, 3));
    for (y, (first, weights)) in rows.first.iter().zip(&rows.weights).enumerate() {
        let first = first - offset;
        for x in 0..input.dim().1 {
            for channel in 0..3 {
                let pixels = (0..weights.len()).map(|k| input[[first + k, x, channel]]);
                out[[y, x, channel]] = weighted(pixels, weights);
            }
        }
    }
    out
}

/// `ToTensor` then `Normalize` of `[h, w, 3]` pixels: `(p / 255 - mean) / std` in f32,
/// channels first, torch's arithmetic bit for bit.
pub fn normalized(pixels: &Array3<u8>, mean: [f32; 3], std: [f32; 3]) -> Array3<f32> {
    let (height, width, _) = pixels.dim();
    Array3::from_shape_fn((3, height, width), |(c, y, x)| {
        (f32::from(pixels[[y, x, c]]) / 255.0 - mean[c]) / std[c]
    })
}

impl Preprocessing {
    /// One image's pixels after resize and crop, `[crop, crop, 3]` bytes.
    pub fn pixels(&self, image: &RgbImage) -> Array3<u8> {
        resize_crop(image, self.resize_shortest, self.crop)
    }

    /// `ToTensor` then `Normalize`: `(p / 255 - mean) / std` in f32, channels first.
    pub fn tensor(&self, pixels: &Array3<u8>) -> Array3<f32> {
        normalized(pixels, self.mean, self.std)
    }

    /// Decode and prepare one image: the `[3, crop, crop]` tensor the model takes.
    pub fn prepare(&self, bytes: &[u8], max_pixels: u64) -> Result<Array3<f32>, ImageError> {
        Ok(self.tensor(&self.pixels(&decode(bytes, max_pixels)?)))
    }
}

/// Stacks `[3, h, w]` tensors into one `[n, 3, h, w]` batch.
pub fn stack(images: &[&Array3<f32>]) -> Array4<f32> {
    let Some(first) = images.first() else {
        return Array4::zeros((0, 3, 0, 0));
    };
    let (channels, height, width) = first.dim();
    let mut batch = Array4::zeros((images.len(), channels, height, width));
    for (mut slot, image) in batch.outer_iter_mut().zip(images) {
        slot.assign(image);
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_size_follows_torchvision() {
        assert_eq!(resized_size(28, 28, 256), (256, 256));
        assert_eq!(resized_size(300, 200, 256), (384, 256));
        // int(256 * 413 / 97) = int(1089.98…) = 1089
        assert_eq!(resized_size(97, 413, 256), (256, 1089));
        assert_eq!(resized_size(640, 427, 256), (383, 256));
    }

    #[test]
    fn crop_offsets_round_half_to_even_as_python() {
        assert_eq!(crop_offset(256, 224), 16);
        // (341 - 224) / 2 = 58.5 → 58; (343 - 224) / 2 = 59.5 → 60
        assert_eq!(crop_offset(341, 224), 58);
        assert_eq!(crop_offset(343, 224), 60);
    }

    #[test]
    fn same_size_resampling_is_the_identity() {
        let image = RgbImage::from_fn(7, 5, |x, y| image::Rgb([(x * 30) as u8, (y * 50) as u8, 200]));
        let out = resize_crop(&image, 5, 5);
        // 7×5 → shorter side 5 keeps the size; the centre 5×5 is columns 1..6.
        for y in 0..5 {
            for x in 0..5 {
                assert_eq!(out[[y, x, 0]], ((x + 1) * 30) as u8);
                assert_eq!(out[[y, x, 1]], (y * 50) as u8);
            }
        }
    }

    /// Σ pixel × (index mod 251 + 1), as the tests' NumPy computes it.
    fn checksum(pixels: &Array3<u8>) -> u64 {
        pixels
            .iter()
            .enumerate()
            .map(|(index, &value)| u64::from(value) * (index as u64 % 251 + 1))
            .sum()
    }

    #[test]
    fn the_passes_run_in_pillows_order() {
        // Pillow 13 runs the vertical pass first when the height shrinks by more than
        // twice as many pixels as the width.
        assert!(vertical_first((97, 413), (60, 255)));
        assert!(!vertical_first((300, 200), (96, 64)));
        assert!(!vertical_first((28, 28), (256, 256)));
        assert!(!vertical_first((100, 100), (80, 60)));
        assert!(vertical_first((100, 100), (80, 59)));
        // torchvision's CenterCrop(c)(Resize(r)) of golden images, checksummed by NumPy:
        // the giraffe shrinks 413 → 255 rows but 97 → 60 columns (vertical first), the
        // horse 300 → 96 columns and 200 → 64 rows (horizontal first).
        for (name, resize, crop, expected) in [
            ("giraffe-rgb-97x413.png", 60, 56, 20_215_492_u64),
            ("horse-rgb-300x200.png", 64, 60, 122_361_984),
        ] {
            let image = decode(&golden(name), DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(checksum(&resize_crop(&image, resize, crop)), expected, "{name}");
        }
    }

    #[test]
    fn upscaling_a_constant_image_keeps_it_constant() {
        let image = RgbImage::from_pixel(3, 2, image::Rgb([10, 128, 255]));
        let out = resize_crop(&image, 256, 224);
        assert_eq!(out.dim(), (224, 224, 3));
        assert!(
            out.outer_iter()
                .all(|row| row.outer_iter().all(|p| p.to_vec() == vec![10, 128, 255]))
        );
    }

    #[test]
    fn normalisation_is_torchvision_arithmetic() {
        let preprocessing = Preprocessing {
            resize_shortest: 1,
            crop: 1,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        };
        let pixels = Array3::from_shape_vec((1, 1, 3), vec![0, 128, 255]).unwrap();
        let tensor = preprocessing.tensor(&pixels);
        // torch: (tensor([0, 128, 255]) / 255 - mean) / std in float32, bit for bit
        let expected = [-2.117_904_f32, 0.205_182_2, 2.64];
        for (c, want) in expected.iter().enumerate() {
            assert_eq!(tensor[[c, 0, 0]], *want, "channel {c}");
        }
    }

    #[test]
    fn bad_bytes_are_named_errors() {
        assert_eq!(decode(b"", 100), Err(ImageError::Empty));
        assert!(matches!(decode(b"hello", 100), Err(ImageError::UnsupportedFormat(_))));
        let truncated = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(matches!(decode(truncated, 100), Err(ImageError::Undecodable { .. })));
    }

    /// A golden image's bytes.
    fn golden(name: &str) -> Vec<u8> {
        let path = format!("{}/../golden/animal-shapes/images/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap()
    }

    #[test]
    fn a_cut_off_jpeg_is_refused_as_pil_refuses_it() {
        // Baseline and progressive; the decoder alone would answer every one of these cuts
        // (china.jpg from its first 4.6 KB on) with gray where the data stops.
        for name in ["china.jpg", "cat-progressive.jpg", "zebra-444-333x211.jpg"] {
            let bytes = golden(name);
            assert!(decode(&bytes, DEFAULT_MAX_PIXELS).is_ok(), "{name}");
            for cut in [1, 2, 12, bytes.len() / 2, bytes.len() - 700] {
                let partial = &bytes[..bytes.len() - cut];
                assert_eq!(
                    decode(partial, DEFAULT_MAX_PIXELS),
                    Err(ImageError::Truncated),
                    "{name} less {cut} bytes"
                );
            }
            // Bytes after the end-of-image marker are ignored, as PIL ignores them.
            let mut padded = bytes.clone();
            padded.extend_from_slice(b"trailing bytes");
            assert!(
                decode(&padded, DEFAULT_MAX_PIXELS).is_ok(),
                "{name} with trailing bytes"
            );
        }
    }

    #[test]
    fn a_png_cut_inside_its_pixels_is_refused() {
        let bytes = golden("elephant-2400x1600.png");
        for cut in [20, bytes.len() / 2] {
            let partial = &bytes[..bytes.len() - cut];
            assert!(
                matches!(decode(partial, DEFAULT_MAX_PIXELS), Err(ImageError::Undecodable { .. })),
                "less {cut} bytes"
            );
        }
    }
}
