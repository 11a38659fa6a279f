#![allow(dead_code)] // each test crate uses part of it
//! What a GPU test does where there is no adapter, for every file that needs one
//! (tests/gpu.rs, tests/backend.rs, tests/cli_backend.rs, tests/gpu_browser.rs,
//! benches/gpu.rs): outside CI it prints a notice and the test passes without
//! checking anything; under CI (`CI` set and not `false` or `0`) it fails, so a CI
//! machine that lost its adapter (lavapipe natively, SwiftShader in Chromium)
//! cannot report the GPU code as tested.

use std::fmt::Display;

use flatminima_backend::gpu::GpuError;

/// True under CI. Natively `CI` is read when the test runs; in wasm (no environment
/// at run time) when the test crate is compiled: `CI=true cargo test --target wasm32-unknown-unknown`.
pub fn under_ci() -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    let ci = std::env::var("CI").ok();
    #[cfg(target_arch = "wasm32")]
    let ci = option_env!("CI").map(str::to_string);
    ci.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn say(line: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{line}");
}

/// `what` (e.g. "GPU tests") found no GPU adapter, for the reason `why`: under CI a
/// panic naming what is missing; elsewhere a notice, and the caller skips its checks.
#[track_caller]
pub fn no_adapter(what: &str, why: &dyn Display) {
    #[cfg(not(target_arch = "wasm32"))]
    let install = "install mesa-vulkan-drivers (lavapipe; `make setup` does)";
    #[cfg(target_arch = "wasm32")]
    let install =
        "run Chromium with --enable-unsafe-webgpu --enable-unsafe-swiftshader (webdriver.json at the crate root)";
    if under_ci() {
        panic!("{what}: no GPU adapter under CI ({why}). CI must run the GPU tests: {install}");
    }
    say(&format!("NOTICE: {what} skipped, no GPU adapter ({why}); {install} to run them"));
}

/// The device `opened` (a `GpuContext`, a `GpuBackend`), named on stderr by
/// `describe`; None after [`no_adapter`] where there is none. Any other failure
/// to open is a bug and panics.
#[track_caller]
pub fn device<T>(what: &str, opened: Result<T, GpuError>, describe: impl FnOnce(&T) -> String) -> Option<T> {
    match opened {
        Ok(device) => {
            say(&format!("{what} run on {}", describe(&device)));
            Some(device)
        }
        Err(GpuError::NoAdapter(why)) => {
            no_adapter(what, &why);
            None
        }
        Err(e) => panic!("{what}: an adapter exists but the GPU failed to open: {e}"),
    }
}
