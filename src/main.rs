//! The `warpgate` command-line tool: thin commands over the `warpgate` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
