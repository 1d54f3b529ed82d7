//! MNIST and Fashion-MNIST from their original IDX files.
//!
//! [`read_idx`] reads one IDX file (gzip or raw), checks its magic number, dimensions, length
//! and the SHA-256 of its decompressed content. [`load`] finds the four files of a dataset,
//! reads them in parallel and keeps the first `train_limit` / `test_limit` images. Pixels stay
//! bytes in memory (47 MB for MNIST's training set instead of 188 MB as `f32`) and are scaled to
//! [0, 1], as in the video, when a batch is copied out ([`Split::extend_scaled`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use flate2::read::GzDecoder;
use multiversion::multiversion;
use sha2::{Digest, Sha256};

use crate::choice::choice_enum;
use crate::error::user_error;
use crate::net::model::INPUTS;

choice_enum! {
    /// A dataset of 28x28 grey images in ten classes, in IDX format.
    pub DatasetName "dataset" {
        /// Handwritten digits (LeCun, Cortes and Burges).
        Mnist = "mnist",
        /// Zalando's clothing images, a harder drop-in replacement.
        FashionMnist = "fashion-mnist",
    }
}

/// Training images, training labels, test images, test labels: the four files of a dataset.
const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl DatasetName {
    /// SHA-256 of the decompressed files, in the order of [`FILES`].
    ///
    /// MNIST: data/mnist/SHA256SUMS, the original files of LeCun, Cortes and Burges.
    /// Fashion-MNIST: the files of Debian's `dataset-fashion-mnist` package, decompressed.
    fn sha256(self) -> [&'static str; 4] {
        match self {
            Self::Mnist => [
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ],
            Self::FashionMnist => [
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ],
        }
    }

    /// How to get the files, for the error when they are missing.
    fn how_to_get(self) -> &'static str {
        match self {
            Self::Mnist => {
                "harness ships MNIST in data/mnist/ of its repository; run from the repository \
                 root or set data.dir to a folder holding the four IDX files (.gz or raw)"
            }
            Self::FashionMnist => {
                "install it with `apt-get install dataset-fashion-mnist` (it goes to \
                 /usr/share/datasets/fashion-mnist/), or set data.dir to a folder holding the \
                 four IDX files (.gz or raw)"
            }
        }
    }
}

/// The folders searched, in order, when `data.dir` is not set.
pub fn default_dirs(dataset: DatasetName) -> Vec<PathBuf> {
    let name = dataset.to_string();
    vec![
        Path::new("data").join(&name),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join(&name),
        Path::new("/usr/share/datasets").join(&name),
    ]
}

/// Every dataset file that exists where [`load`] looks for `dataset` (in `dir`, or in the
/// [`default_dirs`]): the inputs a command's outputs are checked against.
pub fn existing_files(dataset: DatasetName, dir: Option<&Path>) -> Vec<PathBuf> {
    let dirs = match dir {
        Some(dir) => vec![dir.to_path_buf()],
        None => default_dirs(dataset),
    };
    dirs.iter()
        .flat_map(|dir| {
            FILES
                .iter()
                .flat_map(move |name| [dir.join(format!("{name}.gz")), dir.join(name)])
        })
        .filter(|path| path.exists())
        .collect()
}

/// Images in the training file of every dataset harness reads (their SHA-256 is checked, so
/// the count is fixed): 60,000, of which `data.validation` are held out.
pub const TRAIN_IMAGES: usize = 60_000;
/// Images in the test file of every dataset harness reads: 10,000.
pub const TEST_IMAGES: usize = 10_000;

/// One IDX file: its dimensions and its raw bytes after the header.
#[derive(Debug)]
pub struct Idx {
    /// Sizes of each dimension, outermost first (`[60000, 28, 28]` for training images).
    pub dims: Vec<usize>,
    /// The items, one byte each.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, gzip-compressed (by content, not name) or raw.
///
/// Checks the magic number (two zero bytes, type 0x08 = u8, the number of dimensions), that the
/// length matches the dimensions, and, when given, the SHA-256 of the decompressed content.
pub fn read_idx(path: &Path, expected_sha256: Option<&str>) -> Result<Idx> {
    let raw = crate::input::read_bytes(path, "IDX file", crate::input::IDX_MAX)?;
    parse_idx(raw, path, expected_sha256)
}

/// [`read_idx`] on bytes already read; `path` names them in errors. Decompresses at most
/// [`crate::input::IDX_MAX`] bytes.
pub fn parse_idx(raw: Vec<u8>, path: &Path, expected_sha256: Option<&str>) -> Result<Idx> {
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut bytes = Vec::with_capacity(raw.len().saturating_mul(5).min(64 << 20));
        GzDecoder::new(raw.as_slice())
            .take(crate::input::IDX_MAX + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| user_error(format!("{}: not a valid gzip file: {e}", path.display())))?;
        if bytes.len() as u64 > crate::input::IDX_MAX {
            return Err(user_error(format!(
                "{}: decompresses to more than {}, the most harness reads from an IDX file",
                path.display(),
                crate::input::size(crate::input::IDX_MAX)
            )));
        }
        bytes
    } else {
        raw
    };
    let bad = |what: String| user_error(format!("{}: {what}", path.display()));

    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        let magic: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(bad(format!(
            "not an IDX file of unsigned bytes: magic number {} (expected 00 00 08 followed by \
             the number of dimensions)",
            magic.join(" ")
        )));
    }
    let rank = usize::from(bytes[3]);
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(bad(format!(
            "IDX header for {rank} dimensions is truncated"
        )));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let items = dims
        .iter()
        .try_fold(1usize, |product, &d| product.checked_mul(d))
        .filter(|&items| items <= crate::input::IDX_MAX as usize);
    let Some(items) = items else {
        return Err(bad(format!(
            "the header's dimensions {dims:?} describe more than {} of items",
            crate::input::size(crate::input::IDX_MAX)
        )));
    };
    let expected_len = header + items;
    if bytes.len() != expected_len {
        return Err(bad(format!(
            "{} bytes, but the header's dimensions {dims:?} need {expected_len} (truncated or \
             corrupt file)",
            bytes.len()
        )));
    }
    if let Some(expected) = expected_sha256 {
        let actual = format!("{:x}", Sha256::digest(&bytes));
        if actual != expected {
            return Err(bad(format!(
                "SHA-256 of the decompressed content is {actual}, expected {expected}: the file \
                 is corrupt or not the original"
            )));
        }
    }
    let mut data = bytes;
    data.drain(..header);
    Ok(Idx { dims, data })
}

/// The brightness of a pixel byte (0 black to 255 white) in [0, 1], as the network sees it.
#[inline]
pub fn intensity(byte: u8) -> f32 {
    f32::from(byte) / 255.0
}

/// Appends [`intensity`] of every byte to `out`; compiled per x86 SIMD level and chosen at run
/// time, as the optimizer passes in src/net/fused.rs. The division by 255 stays a division (a
/// multiplication by 1/255 gives other floats), sixteen lanes at a time with AVX-512 against
/// SSE2's four. At 128 wide the training batches' copy went from 5.8% of an epoch's samples to
/// 3.9% (AMD EPYC, 2026-11-30); what is left is waiting for images read at random from the split.
#[multiversion(targets = "simd")]
fn extend_intensities(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(bytes.iter().map(|&byte| intensity(byte)));
}

/// Images and their labels.
#[derive(Clone, Debug)]
pub struct Split {
    /// Row-major grey levels 0-255, [`INPUTS`] per image.
    pixels: Vec<u8>,
    /// One class per image, 0-9.
    pub labels: Vec<u8>,
}

impl Split {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The grey levels (0-255) of image `index`, row by row.
    pub fn pixels(&self, index: usize) -> &[u8] {
        &self.pixels[index * INPUTS..(index + 1) * INPUTS]
    }

    /// Appends the pixels of image `index`, scaled to [0, 1] by [`intensity`], to `out`.
    pub fn extend_scaled(&self, index: usize, out: &mut Vec<f32>) {
        extend_intensities(self.pixels(index), out);
    }

    /// The pixels of the images in `range`, scaled to [0, 1], row-major (`[n, 784]`).
    pub fn scaled(&self, range: std::ops::Range<usize>) -> Vec<f32> {
        let mut out = Vec::with_capacity(range.len() * INPUTS);
        for index in range {
            self.extend_scaled(index, &mut out);
        }
        out
    }

    /// A copy of the first `n` images.
    pub fn head(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            pixels: self.pixels[..n * INPUTS].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// A copy of the last `n` images.
    pub fn tail(&self, n: usize) -> Split {
        let start = self.len() - n.min(self.len());
        Split {
            pixels: self.pixels[start * INPUTS..].to_vec(),
            labels: self.labels[start..].to_vec(),
        }
    }

    /// Keeps the first `limit` images.
    fn truncate(&mut self, limit: Option<usize>) {
        if let Some(limit) = limit.filter(|&limit| limit < self.len()) {
            self.labels.truncate(limit);
            self.pixels.truncate(limit * INPUTS);
        }
    }
}

/// A dataset's training, validation and test splits.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The training images: the training file's first images (60,000 less the validation
    /// images, or `train_limit`).
    pub train: Split,
    /// The training file's last `validation` images, held out to choose with (may be empty).
    pub validation: Split,
    /// The test images (10,000, or `test_limit`).
    pub test: Split,
    /// The folder the files came from.
    pub dir: PathBuf,
}

/// Which images of a dataset to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Train on at most this many images.
    pub train: Option<usize>,
    /// Hold out the training file's last N images for validation.
    pub validation: usize,
    /// Test on the first N test images only.
    pub test: Option<usize>,
}

/// Finds and reads a dataset; `dir` overrides the search of [`default_dirs`].
///
/// The validation images are the last `limits.validation` of the training file, as in
/// Nielsen's loader (images 50,000-59,999 of MNIST for 10,000): the same images for every
/// seed and every `train_limit`, and never among the training images.
pub fn load(dataset: DatasetName, dir: Option<&Path>, limits: Limits) -> Result<Dataset> {
    let dirs = match dir {
        Some(dir) => vec![dir.to_path_buf()],
        None => default_dirs(dataset),
    };
    let dir = dirs
        .iter()
        .find(|dir| FILES.iter().all(|file| find_file(dir, file).is_some()))
        .ok_or_else(|| {
            let tried: Vec<String> = dirs
                .iter()
                .flat_map(|dir| FILES.iter().map(move |file| dir.join(format!("{file}.gz"))))
                .filter(|path| !path.is_file() && !path.with_extension("").is_file())
                .map(|path| {
                    let raw = path.with_extension("");
                    match [&path, &raw].into_iter().find(|p| p.exists()) {
                        Some(there) => format!("  {} (not a file)", there.display()),
                        None => format!("  {}", path.display()),
                    }
                })
                .collect();
            user_error(format!(
                "{dataset} not found; these files (.gz or raw) are missing:\n{}\n{}",
                tried.join("\n"),
                dataset.how_to_get()
            ))
        })?
        .clone();

    let sums = dataset.sha256();
    let files: Vec<Idx> = std::thread::scope(|scope| {
        let readers: Vec<_> = FILES
            .iter()
            .zip(sums)
            .map(|(file, sum)| {
                let path = find_file(&dir, file).expect("checked above");
                scope.spawn(move || read_idx(&path, Some(sum)))
            })
            .collect();
        readers
            .into_iter()
            .map(|reader| reader.join().expect("IDX reader thread panicked"))
            .collect::<Result<_>>()
    })?;
    let [train_images, train_labels, test_images, test_labels]: [Idx; 4] =
        files.try_into().expect("four files");

    let mut train = split(train_images, train_labels, &dir)?;
    let mut test = split(test_images, test_labels, &dir)?;
    let total = train.len();
    if limits.validation >= total {
        return Err(user_error(format!(
            "data.validation = {} leaves no training images: {} holds {total} training images; \
             hold out fewer (Nielsen's split of MNIST is 10000)",
            limits.validation,
            dir.display()
        )));
    }
    let validation = train.tail(limits.validation);
    train.truncate(Some(total - limits.validation));
    train.truncate(limits.train);
    test.truncate(limits.test);
    Ok(Dataset {
        train,
        validation,
        test,
        dir,
    })
}

/// `dir/name.gz`, or else the raw `dir/name`, if either exists.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|path| path.is_file())
}

/// Pairs an images file with its labels file.
fn split(images: Idx, labels: Idx, dir: &Path) -> Result<Split> {
    let bad = |what: String| user_error(format!("{}: {what}", dir.display()));
    if images.dims.len() != 3 || images.dims[1] * images.dims[2] != INPUTS {
        return Err(bad(format!(
            "images have dimensions {:?}, expected [n, 28, 28]",
            images.dims
        )));
    }
    if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
        return Err(bad(format!(
            "{} images but labels of dimensions {:?}",
            images.dims[0], labels.dims
        )));
    }
    if let Some(label) = labels.data.iter().find(|&&label| label > 9) {
        return Err(bad(format!("label {label} is not a digit 0-9")));
    }
    Ok(Split {
        pixels: images.data,
        labels: labels.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::fs;
    use std::io::Write;

    /// A small labels file: magic 0x00000801, three labels.
    fn labels_file() -> Vec<u8> {
        let mut bytes = vec![0, 0, 8, 1, 0, 0, 0, 3];
        bytes.extend([7, 2, 1]);
        bytes
    }

    fn sha256(bytes: &[u8]) -> String {
        format!("{:x}", Sha256::digest(bytes))
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn reads_raw_and_gzip_files_with_their_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = labels_file();
        for path in [
            write(dir.path(), "raw", &bytes),
            write(dir.path(), "zipped.gz", &gzip(&bytes)),
        ] {
            let idx = read_idx(&path, Some(&sha256(&bytes))).unwrap();
            assert_eq!(idx.dims, vec![3]);
            assert_eq!(idx.data, vec![7, 2, 1]);
        }
    }

    #[test]
    fn truncated_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = labels_file();
        let path = write(dir.path(), "short", &bytes[..bytes.len() - 1]);
        let message = format!("{:#}", read_idx(&path, None).unwrap_err());
        assert!(message.contains("truncated or corrupt"), "{message}");
        assert!(message.contains("short"), "{message}");
    }

    #[test]
    fn wrong_magic_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = labels_file();
        bytes[2] = 0x0d; // IDX type 0x0d is f32, not u8
        let path = write(dir.path(), "float", &bytes);
        let message = format!("{:#}", read_idx(&path, None).unwrap_err());
        assert!(message.contains("magic number 00 00 0d 01"), "{message}");
    }

    #[test]
    fn wrong_checksum_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = labels_file();
        let path = write(dir.path(), "labels.gz", &gzip(&bytes));
        let wrong = sha256(b"something else");
        let message = format!("{:#}", read_idx(&path, Some(&wrong)).unwrap_err());
        assert!(message.contains("SHA-256"), "{message}");
        assert!(message.contains(&sha256(&bytes)), "{message}");
    }

    #[test]
    fn loads_the_vendored_mnist_with_limits() {
        let limits = Limits {
            train: Some(100),
            validation: 0,
            test: Some(50),
        };
        let data = load(DatasetName::Mnist, None, limits).unwrap();
        assert_eq!((data.train.len(), data.test.len()), (100, 50));
        assert_eq!(data.train.pixels.len(), 100 * INPUTS);
        // The first training digit of MNIST is a 5, the first test digit a 7.
        assert_eq!((data.train.labels[0], data.test.labels[0]), (5, 7));
        let scaled = data.train.scaled(0..100);
        assert_eq!(scaled.len(), 100 * INPUTS);
        assert!(scaled.iter().all(|p| (0.0..=1.0).contains(p)));
        assert!(scaled.contains(&1.0) && scaled.contains(&0.0));
        // Image 3 starts 3 * 784 values in, scaled pixel for pixel.
        let third = data.train.pixels(3);
        assert_eq!(scaled[3 * INPUTS + 200], f32::from(third[200]) / 255.0);
    }

    #[test]
    fn missing_dataset_names_every_path_tried() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("train-images-idx3-ubyte.gz")).unwrap();
        let message = format!(
            "{:#}",
            load(DatasetName::Mnist, Some(dir.path()), Limits::default()).unwrap_err()
        );
        for file in FILES {
            assert!(message.contains(file), "{message}");
        }
        assert!(
            message.contains("train-images-idx3-ubyte.gz (not a file)"),
            "{message}"
        );
        assert!(message.contains("data.dir"), "{message}");
    }

    #[test]
    fn validation_is_the_end_of_the_training_file_and_never_trained_on() {
        let all = load(DatasetName::Mnist, None, Limits::default()).unwrap();
        let limits = Limits {
            train: Some(3000),
            validation: 10_000,
            test: Some(10),
        };
        let data = load(DatasetName::Mnist, None, limits).unwrap();
        assert_eq!(
            (data.train.len(), data.validation.len(), data.test.len()),
            (3000, 10_000, 10)
        );
        assert_eq!(data.train.pixels(0), all.train.pixels(0));
        assert_eq!(data.validation.pixels(0), all.train.pixels(50_000));
        assert_eq!(data.validation.pixels(9_999), all.train.pixels(59_999));
        let everything = load(
            DatasetName::Mnist,
            None,
            Limits {
                validation: 10_000,
                ..Limits::default()
            },
        )
        .unwrap();
        assert_eq!(everything.train.len(), 50_000);
        assert_eq!(everything.train.pixels(49_999), all.train.pixels(49_999));
        let message = format!(
            "{:#}",
            load(
                DatasetName::Mnist,
                None,
                Limits {
                    validation: 60_000,
                    ..Limits::default()
                }
            )
            .unwrap_err()
        );
        assert!(message.contains("leaves no training images"), "{message}");
    }
}
