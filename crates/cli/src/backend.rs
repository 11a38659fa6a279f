//! `--backend auto|gpu|cpu`: which backend computes a command's heavy work, and
//! the stderr lines that say which one is active and why it fell back.

use clap::Args;
use flatminima_backend::gpu::block_on;
use flatminima_backend::{Backend, BackendChoice};
use flatminima_core::model::Mlp;

#[derive(Args, Clone, Debug)]
pub struct BackendArgs {
    /// Where the heavy work runs: `auto` (a hardware GPU if there is one, else the CPU), `gpu`
    /// (any GPU adapter, software ones such as lavapipe too; the CPU with a notice where that
    /// fails), or `cpu` (the f64 core)
    #[arg(long, value_name = "auto|gpu|cpu", default_value_t = BackendChoice::Auto, value_parser = parse_choice)]
    pub backend: BackendChoice,
}

fn parse_choice(text: &str) -> Result<BackendChoice, String> {
    text.parse::<BackendChoice>().map_err(|e| e.message)
}

impl BackendArgs {
    /// Opens the chosen backend for `mlp` and says on stderr which one is active (and why,
    /// if it is not the one asked for). Returns the backend and that notice, if any.
    pub fn open(&self, mlp: &Mlp) -> (Backend, Vec<String>) {
        quiet_mesa();
        let (backend, notice) = block_on(Backend::select_for(self.backend, mlp));
        if let Some(notice) = &notice {
            eprintln!("notice: {notice}");
        }
        eprintln!("backend: {}", backend.description());
        (backend, notice.into_iter().collect())
    }
}

/// Mesa's Vulkan drivers (lavapipe included) print "error: XDG_RUNTIME_DIR is
/// invalid or not set" when probed without that variable (containers, CI, ssh
/// sessions); nothing is wrong, so give them a directory rather than alarm the
/// user. Runs before wgpu starts any thread.
pub fn quiet_mesa() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: called from the CLI's main thread before any other thread exists.
        #[allow(unused_unsafe)]
        unsafe {
            std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
        }
    }
}

/// Prints the notices of calls that fell back to the CPU; returns them for the output file.
pub fn report_notices(backend: &Backend) -> Vec<String> {
    let notices = backend.take_notices();
    for notice in &notices {
        eprintln!("notice: {notice}");
    }
    notices
}
