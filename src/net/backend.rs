//! The one place that turns a backend name into a burn `Device`.
//!
//! burn 0.22 picks its backend at run time: a `Device` is a dispatch value, not a type
//! parameter. [`select`] maps the name from the config file or `--backend` to that device,
//! checks that the backend was compiled in and (for wgpu) that a GPU adapter exists, and
//! describes the hardware for the results row. Everything downstream takes `&Device`.

use anyhow::Result;
use burn::tensor::Device;

use crate::choice::choice_enum;
use crate::error::user_error;

choice_enum! {
    /// A backend as the user names it.
    pub BackendName "backend" {
        /// The fastest CPU backend in this build (see [`BackendName::resolve`]).
        Cpu = "cpu",
        /// burn-flex: burn 0.22's pure-Rust CPU backend.
        Flex = "flex",
        /// burn-ndarray: the original CPU backend, deprecated in burn 0.22.
        Ndarray = "ndarray",
        /// burn-wgpu: Vulkan, Metal or DX12, on a GPU or on Mesa's lavapipe.
        Wgpu = "wgpu",
    }
}

impl BackendName {
    /// The concrete backend a name stands for: `cpu` is flex when it is compiled in (5x faster
    /// than ndarray at batch 10, see README.md), else ndarray.
    pub fn resolve(self) -> BackendName {
        match self {
            Self::Cpu if cfg!(feature = "flex") || !cfg!(feature = "ndarray") => Self::Flex,
            Self::Cpu => Self::Ndarray,
            other => other,
        }
    }

    /// The cargo feature that compiles this backend in.
    fn feature(self) -> &'static str {
        match self.resolve() {
            Self::Flex | Self::Cpu => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
        }
    }

    /// Whether this build has the backend.
    pub fn is_compiled(self) -> bool {
        match self.resolve() {
            Self::Flex | Self::Cpu => cfg!(feature = "flex"),
            Self::Ndarray => cfg!(feature = "ndarray"),
            Self::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// Whether runs on this backend drop the ragged last batch to keep tensor shapes constant
    /// (cubecl autotunes its kernels for every new shape).
    pub fn needs_constant_shapes(self) -> bool {
        self.resolve() == Self::Wgpu
    }
}

/// A device ready for training, and what it is.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The concrete backend (`cpu` already resolved).
    pub backend: BackendName,
    /// The burn device, without autodiff; training adds it with `device.clone().autodiff()`.
    pub device: Device,
    /// The hardware in words, for the results row (an adapter name, or the CPU thread count).
    pub description: String,
}

/// Turns a backend name into a burn `Device`.
///
/// Fails with a user error when the backend is not compiled in, and with a run error when wgpu
/// finds no Vulkan, Metal or DX12 adapter.
pub fn select(name: BackendName) -> Result<Selected> {
    let backend = name.resolve();
    if !name.is_compiled() {
        return Err(user_error(format!(
            "backend \"{name}\" is not in this build of harness; rebuild with \
             `cargo build --release --features {}`",
            name.feature()
        )));
    }
    let (device, description) = match backend {
        #[cfg(feature = "flex")]
        BackendName::Flex => (Device::flex(), cpu_description()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        // burn-ndarray is deprecated in burn 0.22 but still supported here
        BackendName::Ndarray => (Device::ndarray(), cpu_description()),
        #[cfg(feature = "wgpu")]
        BackendName::Wgpu => {
            let adapter = wgpu_adapter()?;
            (
                Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
                adapter,
            )
        }
        _ => unreachable!("is_compiled() checked that {backend} is in this build"),
    };
    Ok(Selected {
        backend,
        device,
        description,
    })
}

/// The CPU as the results row describes it.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn cpu_description() -> String {
    match cpu_threads() {
        1 => "cpu (1 thread)".to_string(),
        threads => format!("cpu ({threads} threads)"),
    }
}

/// The CPU threads this process may use: `RAYON_NUM_THREADS` when set (the CPU backends' thread
/// pools honour it, and `harness sweep --jobs` sets it to split the cores between workers), else
/// every core available to the process.
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|threads| threads.parse::<usize>().ok())
        .filter(|&threads| threads > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Where cubecl keeps what it learns about a GPU from one run to the next (the autotune results):
/// one database, by default under `target/environment/` of the Cargo project the command runs
/// in (this repository, for `cargo run`), else in the user cache folder (`~/.cache/cubecl/` on
/// Linux). A `cubecl.toml` in the working directory can move it.
#[cfg(feature = "wgpu")]
pub fn gpu_cache() -> std::path::PathBuf {
    cubecl_environment::environment::path()
}

/// Finds the adapter burn-wgpu will use, before burn touches it.
///
/// Without this check, a machine with no adapter makes burn panic in a worker thread (the main
/// thread only sees `RecvError`), and a machine with only OpenGL may deadlock in the GL
/// fallback. Asking wgpu first, for the native APIs only, turns both into one clean error.
#[cfg(feature = "wgpu")]
fn wgpu_adapter() -> Result<String> {
    use wgpu::{Backends, Instance, InstanceDescriptor};

    let backends = Backends::VULKAN | Backends::METAL | Backends::DX12;
    let mut descriptor = InstanceDescriptor::new_without_display_handle();
    descriptor.backends = backends;
    let instance = Instance::new(descriptor);
    let adapters = futures_lite::future::block_on(instance.enumerate_adapters(backends));
    // burn's DefaultDevice prefers high-power GPUs; name the adapter it will most likely take.
    let mut infos: Vec<_> = adapters.iter().map(|adapter| adapter.get_info()).collect();
    infos.sort_by_key(|info| device_type_rank(info.device_type));
    match infos.first() {
        Some(info) => Ok(format!("{} ({:?})", info.name, info.backend)),
        None => anyhow::bail!(
            "backend \"wgpu\" found no Vulkan, Metal or DX12 adapter on this machine; \
             on Linux without a GPU, `apt-get install mesa-vulkan-drivers libvulkan1` gives \
             wgpu a CPU Vulkan device (lavapipe), or use --backend cpu"
        ),
    }
}

#[cfg(feature = "wgpu")]
fn device_type_rank(device_type: wgpu::DeviceType) -> u8 {
    match device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// The wgpu device for a unit test: `None` (the reason printed) on a machine without a Vulkan,
/// Metal or DX12 adapter, a panic where one is required (HARNESS_REQUIRE_WGPU=1, as in CI on
/// lavapipe).
#[cfg(all(test, feature = "wgpu"))]
pub(crate) fn wgpu_for_test() -> Option<Device> {
    let required = std::env::var("HARNESS_REQUIRE_WGPU").is_ok_and(|v| v == "1");
    match select(BackendName::Wgpu) {
        Ok(selected) => Some(selected.device),
        Err(error) if !required => {
            eprintln!("skipped: {error:#}");
            None
        }
        Err(error) => panic!("wgpu is required here: {error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::choice::Choice;

    #[test]
    fn names_round_trip() {
        for &name in BackendName::ALL {
            assert_eq!(BackendName::parse(name.name()), Ok(name));
        }
    }

    #[test]
    fn near_miss_suggests_the_name() {
        let message = BackendName::parse("wgu").unwrap_err();
        assert!(message.contains("did you mean \"wgpu\""), "{message}");
        assert!(
            message.contains("valid: cpu, flex, ndarray, wgpu"),
            "{message}"
        );
    }

    #[test]
    fn cpu_resolves_to_a_concrete_backend() {
        let resolved = BackendName::Cpu.resolve();
        assert!(matches!(resolved, BackendName::Flex | BackendName::Ndarray));
        assert_eq!(resolved.resolve(), resolved);
    }
}
