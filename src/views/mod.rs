//! The views stage: what people read from the record. The Markdown table ([`report`]), the
//! charts ([`plot`]), the HTML page ([`html`]) and its live view on a local port ([`serve`]), pictures of a trained network ([`inspect`]) and
//! its answers for images ([`predict`]), and the network in formats other tools read
//! ([`export`]). Nothing here writes the record.

pub mod report;
pub mod plot;
pub mod html;
pub mod inspect;
pub mod predict;
pub mod export;
pub mod serve;
