//! The browser layer: the only code that touches wasm-bindgen, web-sys and
//! js-sys. `www/flatminima-sandbox.js` (the `<flatminima-sandbox>` element)
//! drives it.
//!
//! - [`sandbox`]: the exported `Sandbox` (a pair of runs, time-sliced training, metrics JSON;
//!   `sandbox/views.rs`: its landscape and sharpness work and drawing)
//! - [`field`]: decision probabilities on a grid -> pixel buffer + boundary segments
//! - [`boundary`]: one decision-boundary panel on a canvas
//! - [`canvas`]: canvases that work in a window and in the page's Web Worker
//! - [`chart`]: the look the line charts share (margins, grid, labels)
//! - [`curves`]: loss and accuracy curves
//! - [`landscape_view`]: loss surfaces (heatmap + contours + trajectory, 3D) and 1D slices
//! - [`sharpness_view`]: lambda_max over training and the Hessian spectra
//! - [`palette`]: colour-blind-safe colours
//! - [`live_bytes`]: the allocator's count of live bytes, for leak tests
//! - `bench` (feature `bench-page`): timings for `www/bench.html`, left out of the shipped module
//! - [`grid_study`]: the study panel's grid study in bounded pieces, and [`seed_study`]: a study
//!   of seeds (`el.study()`) in bounded pieces (plain Rust; exported only by `study_page`, feature
//!   `study-page`: the study module `www/pkg-study`, which the worker loads when the first study
//!   starts, so the module every reader downloads stays small)
//! - `gpu_page` (feature `gpu-page`): the GPU module `www/pkg-gpu`, which the element loads
//!   only where WebGPU has an adapter; built without the default feature `page` (everything
//!   above but `live_bytes`), so it holds the GPU kernels and what they need, nothing else
//!
//! Features: `page` (default) exports the sandbox; `gpu-page` the GPU module; `study-page` the
//! study module; `bench-page` the timings.

#[cfg(feature = "bench-page")]
mod bench;
#[cfg(feature = "page")]
pub mod boundary;
#[cfg(feature = "page")]
pub mod canvas;
#[cfg(feature = "page")]
pub mod chart;
#[cfg(feature = "page")]
pub mod curves;
#[cfg(feature = "page")]
pub mod field;
#[cfg(feature = "gpu-page")]
mod gpu_page;
pub mod grid_study;
#[cfg(feature = "page")]
pub mod landscape_view;
pub mod live_bytes;
#[cfg(feature = "page")]
pub mod palette;
#[cfg(feature = "page")]
pub mod sandbox;
pub mod seed_study;
#[cfg(feature = "page")]
pub mod sharpness_view;
#[cfg(feature = "study-page")]
mod study_page;

use std::sync::Once;

#[cfg(feature = "page")]
pub use page_exports::*;
#[cfg(feature = "page")]
pub use sandbox::Sandbox;

/// Name of the global property where the last Rust panic message is left for
/// the element, which reads it after catching the trap (a `RuntimeError`).
/// The GPU module (a separate wasm instance) uses its own, so that the element
/// can tell a crashed GPU (go on on the CPU) from a crashed sandbox (stop).
pub const PANIC_GLOBAL: &str = "__flatminimaPanic";
/// Same for the GPU module's panics.
pub const GPU_PANIC_GLOBAL: &str = "__flatminimaGpuPanic";
/// The study module's (`www/pkg-study`): a crash there fails the study, not the element.
pub const STUDY_PANIC_GLOBAL: &str = "__flatminimaStudyPanic";

/// Routes Rust panics to the console (with the message, not just
/// "unreachable") and leaves the message in `globalThis.__flatminimaPanic`
/// (`__flatminimaGpuPanic` in the GPU module). Called by every entry point;
/// only the first call installs anything.
pub fn install_panic_hook() {
    const GLOBAL: &str = if cfg!(feature = "page") {
        PANIC_GLOBAL
    } else if cfg!(feature = "study-page") {
        STUDY_PANIC_GLOBAL
    } else {
        GPU_PANIC_GLOBAL
    };
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let message = info.to_string();
            let _ = js_sys::Reflect::set(&js_sys::global(), &GLOBAL.into(), &message.as_str().into());
            console_error_panic_hook::hook(info);
        }));
    });
}

/// `performance` of the global scope, a window's or a worker's (the page
/// runs its sandbox in a worker, where there is no `window()`).
pub(crate) fn performance() -> Option<web_sys::Performance> {
    use wasm_bindgen::JsCast;
    let value = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok()?;
    (!value.is_undefined() && !value.is_null()).then(|| value.unchecked_into())
}

/// Milliseconds from `performance.now()`, for one-off timings; the sandbox
/// keeps its `Performance` handle in a `Clock`.
#[cfg(any(feature = "gpu-page", feature = "bench-page"))]
fn now_ms() -> f64 {
    performance().map_or_else(js_sys::Date::now, |p| p.now())
}

/// The sandbox module's free functions.
#[cfg(feature = "page")]
mod page_exports {
    use serde_json::json;
    use wasm_bindgen::prelude::*;

    use super::{install_panic_hook, palette};
    use crate::settings::{Group, SETTINGS};

    /// The settings schema (`settings::SETTINGS` as JSON: name, label, group,
    /// kind with its range or options, default, help, note), from which the
    /// element builds its controls, plus the groups' titles in order and the
    /// page's limits (a study's replicas, steps and parameters).
    #[wasm_bindgen(js_name = settingsSpecJson)]
    pub fn settings_spec_json() -> String {
        install_panic_hook();
        let groups: Vec<_> = Group::ALL.iter().map(|g| json!({"id": g, "title": g.title()})).collect();
        let limits = json!({
            "study_replicas": crate::study::PAGE_MAX_REPLICAS,
            "study_steps": crate::study::PAGE_MAX_STEPS,
            "study_params": crate::study::PAGE_MAX_STUDY_PARAMS,
        });
        json!({"settings": SETTINGS, "groups": groups, "limits": limits}).to_string()
    }

    /// The colours the canvases use, as CSS hex strings, so the element's HTML
    /// legends match them: `{"classes": [...], "sides": [...]}`.
    #[wasm_bindgen(js_name = paletteJson)]
    pub fn palette_json() -> String {
        let hex = |c: &palette::Rgb| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
        let classes: Vec<String> = palette::CLASS.iter().map(hex).collect();
        let sides: Vec<String> = palette::SIDE.iter().map(hex).collect();
        json!({"classes": classes, "sides": sides}).to_string()
    }

    /// Panics on purpose, so that tests can check that a Rust panic becomes a
    /// visible error in the element rather than a frozen page.
    #[wasm_bindgen(js_name = panicForTests)]
    pub fn panic_for_tests() {
        install_panic_hook();
        panic!("deliberate panic for tests");
    }
}
