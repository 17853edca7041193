//! The `nightshift` binary: parse the command line, set up logging, hand
//! over to the library, turn the result into an exit code.

use std::process::ExitCode;

use clap::Parser;

// See Cargo.toml's `mimalloc` feature.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = nightshift::cli::Cli::parse();
    nightshift::cli::init_logging(
        cli.verbose,
        matches!(cli.command, nightshift::cli::Command::Daemon),
    );
    match nightshift::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("nightshift: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
