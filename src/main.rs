//! The `crowdminder` command (see [`crowdminder::cli`]).

use std::process::ExitCode;

use clap::Parser;
use crowdminder::cli::{self, Cli};
use crowdminder::telemetry;

/// mimalloc rather than glibc's allocator: the service allocates and frees many small
/// buffers per request from every worker thread, which mimalloc serves from per-thread
/// pages (glibc's arenas cost the service about a tenth of its CPU under load), and it
/// hands freed pages back to the system.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A missing .env is normal; the environment may hold everything.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
