//! The published test vectors, and the property that a cut user agent parses to whole frames.

mod truncation;
mod vectors;
