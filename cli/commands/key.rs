//! `hstore key …`: bundle signing keys. The secret key never leaves its file; the public key is printed on stdout
//! (data) so it can be piped into a trusted-keys file.

use std::io::{self, Write};

use anyhow::{Context, Result};
use hstore_store::bundle::SecretKey;

use crate::args::KeyCommand;
use crate::printer::{ExitStatus, Printer};

pub fn run(command: KeyCommand, printer: &Printer) -> Result<ExitStatus> {
    match command {
        KeyCommand::Generate { out } => {
            let key = SecretKey::generate();
            let (secret, public) = key.write_pair(&out)?;
            printer.status(
                "Generated",
                format!(
                    "`{}` (keep it secret) and `{}`",
                    secret.display(),
                    public.display()
                ),
            );
            let mut stdout = io::stdout().lock();
            writeln!(stdout, "{}", key.public_key()).context("failed to write to stdout")?;
            Ok(ExitStatus::Success)
        }
    }
}
