//! The `flatminima` command: train SGD and SAM side by side from a JSON config.
//!
//! The library does the work; `src/cli/` is the only code that touches files
//! and the terminal.

// The CLI's dependencies (clap) are native-only; on wasm32 (where cargo still
// builds this binary for `cargo test --target wasm32-unknown-unknown --tests`)
// it is an empty program.
#[cfg(not(target_arch = "wasm32"))]
mod cli;

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    std::process::exit(cli::run());
}
