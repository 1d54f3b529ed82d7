//! The IDX reader: `data::parse_idx`, gzip-compressed or raw.
//!
//! Invariants checked on success: 1 to 255 dimensions; as many items as the dimensions' product;
//! a raw file's items are its bytes after the header; the content's SHA-256 (the header rebuilt
//! from the dimensions, then the items) is accepted and gives the same result, and another hash
//! is refused.

#![no_main]

use std::path::Path;

use harness::data::mnist::parse_idx;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz/images-idx3-ubyte");
    let idx = parse_idx(data.to_vec(), path, None);
    common::report("idx", &idx, |idx| format!("dims {:?}", idx.dims));
    let Ok(idx) = idx else { return };

    assert!(
        (1..=255).contains(&idx.dims.len()),
        "rank {}",
        idx.dims.len()
    );
    let items: usize = idx.dims.iter().product();
    assert_eq!(idx.data.len(), items, "dims {:?}", idx.dims);
    let gzip = data.starts_with(&[0x1f, 0x8b]);
    let header = 4 + 4 * idx.dims.len();
    if !gzip {
        assert_eq!(&data[header..], idx.data.as_slice());
    }

    let mut content = vec![0, 0, 0x08, idx.dims.len() as u8];
    for &d in &idx.dims {
        content.extend_from_slice(
            &u32::try_from(d)
                .expect("a dimension fits u32")
                .to_be_bytes(),
        );
    }
    content.extend_from_slice(&idx.data);
    let sha = format!("{:x}", Sha256::digest(&content));
    match parse_idx(data.to_vec(), path, Some(&sha)) {
        Ok(again) => {
            assert_eq!(again.dims, idx.dims);
            assert_eq!(again.data, idx.data);
        }
        Err(e) => panic!("the content's own SHA-256 is refused: {e:#}"),
    }
    let wrong = "0".repeat(64);
    if sha != wrong {
        assert!(parse_idx(data.to_vec(), path, Some(&wrong)).is_err());
    }
});
