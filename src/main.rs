//! The `flatminima` command: train SGD and SAM side by side from a JSON config.
//!
//! The library does the work; `src/cli/` is the only code that touches files
//! and the terminal.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
