//! A secret read from standard input (a password, a one-time code, an enrollment code, a key
//! share). On a terminal it is prompted for and not echoed, so it stays off the screen, its
//! scrollback and any recording of the session; piped in, it is read as it comes.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};
use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
use zeroize::Zeroizing;

/// One line of standard input, without its line break; empty if nothing was given.
pub(crate) fn read_secret(prompt: &str) -> Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    // On a terminal: a prompt, and echo off (the newline still echoed) for the read, then back
    // as it was whatever the read gave.
    let saved = if stdin.is_terminal() {
        eprint!("{prompt}: ");
        std::io::stderr().flush()?;
        let saved = tcgetattr(&stdin).context("reading the terminal's settings")?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&stdin, OptionalActions::Flush, &quiet).context("turning echo off")?;
        Some(saved)
    } else {
        None
    };
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        tcsetattr(&stdin, OptionalActions::Now, &saved).context("turning echo back on")?;
    }
    read.context("reading standard input")?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}
