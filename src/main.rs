//! The `flatminima` command-line tool. See `src/cli/` for the subcommands.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
