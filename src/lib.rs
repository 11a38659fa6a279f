//! flatminima: train tiny MLPs side by side (SGD vs SAM) on shifted 2D data
//! and measure whether the flatter minimum is the more robust one.
//!
//! This package is the browser layer ([`web`], wasm32 only) and the wasm
//! module the page loads. The work is done by two crates it re-exports, so
//! `flatminima::model`, `flatminima::backend`, `flatminima::gpu` name the same
//! items everywhere (tests, benches, the page):
//! - [`flatminima_core`]: data, model, optimisers, training, Hessian, sharpness,
//!   landscape, studies. Plain Rust on one flat parameter vector, no web, no GPU.
//! - [`flatminima_backend`]: the GPU kernels and the one CPU/GPU chooser.
//!
//! See ARCHITECTURE.md for the map.

// Every public item says what it is (`make lint` runs clippy with -D warnings).
#![warn(missing_docs)]

pub use flatminima_backend as backend;
pub use flatminima_backend::gpu;
pub use flatminima_core::*;

/// The page-worker messages, declared once (TypeScript declarations generated on wasm32).
#[cfg(any(not(target_arch = "wasm32"), feature = "page"))]
pub mod protocol;

/// The browser layer: the only code that touches web-sys/js-sys.
#[cfg(target_arch = "wasm32")]
pub mod web;
