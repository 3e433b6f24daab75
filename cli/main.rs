//! The `hstore` binary: parse arguments, start logging, run one command, render its error. Nothing else lives here.

mod args;
mod commands;
mod env_vars;
mod error;
mod printer;
mod reporter;
mod settings;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The sandbox helper must run before anything starts a thread: it unshares a user namespace.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == hstore_sandbox::HELPER_ARG)
    {
        hstore_sandbox::helper_main();
    }
    let cli = args::Cli::parse();
    let printer = printer::Printer::new(&cli.global);
    printer::init_logging(&cli.global);
    match commands::run(cli, &printer) {
        Ok(status) => status.into(),
        Err(error) => printer.render_error(&error),
    }
}
