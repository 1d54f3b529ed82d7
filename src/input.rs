//! Reading what the user hands harness, with bounds on time and memory.
//!
//! Every input (a config, an experiment, a results CSV, an IDX file, an image) must be a regular
//! file no larger than a cap that fits its kind: a FIFO, a device such as `/dev/zero` or a
//! directory is refused up front with the path and what was expected, so no read can block
//! forever or grow without end. The caps are far above any real input (MNIST's largest file is
//! 47 MB decompressed) and are named in each message.

use std::fs::{self, File, Metadata};
use std::io::Read;
use std::path::Path;

use anyhow::Result;

use crate::error::user_error;
pub use crate::text::size;

/// The largest config or experiment file read (1 MiB; the shipped ones are under 4 KiB).
pub const TEXT_MAX: u64 = 1 << 20;
/// The largest results CSV read (1 GiB: about two million runs).
pub const CSV_MAX: u64 = 1 << 30;
/// The largest IDX file read, compressed or not, and the most bytes one may decompress to
/// (256 MiB; MNIST's training images are 47 MB).
pub const IDX_MAX: u64 = 256 << 20;
/// The largest image file read (64 MiB).
pub const IMAGE_FILE_MAX: u64 = 64 << 20;

/// `path`'s metadata if it is a regular file of at most `max` bytes; `what` names it in errors
/// ("config", "runs file").
pub fn regular_file(path: &Path, what: &str, max: u64) -> Result<Metadata> {
    let metadata = fs::metadata(path).map_err(|e| missing(path, what, &e))?;
    check_metadata(path, what, max, &metadata)?;
    Ok(metadata)
}

/// Why `path` cannot be opened; for a runs file that is not there, what to do next.
fn missing(path: &Path, what: &str, error: &std::io::Error) -> anyhow::Error {
    if error.kind() == std::io::ErrorKind::NotFound && what == "runs file" {
        return user_error(format!(
            "no run has been recorded in {} yet (the file does not exist): `harness run \
             configs/sigmoid_16x16.toml` trains the video's network and records it there, or \
             give the runs file that your runs wrote (output.runs)",
            path.display()
        ));
    }
    user_error(format!("cannot read {what} {}: {error}", path.display()))
}

/// The checks of [`regular_file`] on metadata already in hand (of an open file, say).
pub fn check_metadata(path: &Path, what: &str, max: u64, metadata: &Metadata) -> Result<()> {
    if metadata.is_dir() {
        return Err(user_error(format!(
            "{what} {} is a directory; expected a file",
            path.display()
        )));
    }
    if !metadata.is_file() {
        return Err(user_error(format!(
            "{what} {} is not a regular file (a device, a pipe or a socket); expected a file",
            path.display()
        )));
    }
    if metadata.len() > max {
        return Err(user_error(format!(
            "{what} {} is {} bytes; harness reads at most {} ({}) for a {what}",
            path.display(),
            metadata.len(),
            max,
            size(max)
        )));
    }
    Ok(())
}

/// The bytes of a regular file of at most `max` bytes.
pub fn read_bytes(path: &Path, what: &str, max: u64) -> Result<Vec<u8>> {
    regular_file(path, what, max)?;
    let mut bytes = Vec::new();
    open_read(path)
        .and_then(|file| file.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| user_error(format!("cannot read {what} {}: {e}", path.display())))?;
    if bytes.len() as u64 > max {
        // The file grew while it was read.
        return Err(user_error(format!(
            "{what} {} is larger than {}",
            path.display(),
            size(max)
        )));
    }
    Ok(bytes)
}

/// Opens a file for reading without blocking: a regular file ignores `O_NONBLOCK`, while a
/// kernel file that poses as one (`/proc/kmsg` waits for the next kernel message) fails with
/// "resource temporarily unavailable" instead of waiting forever.
pub fn open_read(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// The text of a regular UTF-8 file of at most `max` bytes.
pub fn read_text(path: &Path, what: &str, max: u64) -> Result<String> {
    let bytes = read_bytes(path, what, max)?;
    String::from_utf8(bytes).map_err(|e| {
        user_error(format!(
            "{what} {} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_file_that_would_block_is_refused_not_waited_on() {
        // /proc/kmsg looks like an empty regular file and, read as root, blocks until the
        // kernel logs something. (Not root: it cannot be opened at all.) Either way, an error.
        let path = Path::new("/proc/kmsg");
        if path.exists() {
            assert!(read_text(path, "config", TEXT_MAX).is_err());
        }
    }

    #[test]
    fn devices_directories_and_large_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let message = format!(
            "{:#}",
            read_text(dir.path(), "config", TEXT_MAX).unwrap_err()
        );
        assert!(message.contains("is a directory"), "{message}");
        let message = format!(
            "{:#}",
            read_text(Path::new("/dev/zero"), "config", TEXT_MAX).unwrap_err()
        );
        assert!(
            message.contains("/dev/zero is not a regular file"),
            "{message}"
        );
        let big = dir.path().join("big.toml");
        fs::write(&big, vec![b'#'; 2048]).unwrap();
        let message = format!("{:#}", read_text(&big, "config", 1024).unwrap_err());
        assert!(message.contains("2048 bytes"), "{message}");
        assert!(message.contains("1 KiB"), "{message}");
        fs::write(&big, b"a = 1\n").unwrap();
        assert_eq!(read_text(&big, "config", 1024).unwrap(), "a = 1\n");
    }
}
