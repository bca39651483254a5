//! The fixed sequence the detection benchmark and the test of decoding against NumPy draw
//! raw outputs from (`tests/detection_as_python.rs` includes this file): a 64-bit LCG,
//! each value the top 24 bits of its state over 2^24, in [0, 1) and exact in f32, so that
//! NumPy can draw the very same numbers.

pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}
