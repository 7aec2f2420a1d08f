//! Panics without their messages. A panic's message can quote the value being worked on (a
//! string sliced out of bounds prints the string, an `expect` may format its subject), so the
//! server's hook logs where a panic happened and in which request, never what it said. The
//! request context answers the request itself: `500 internal`, audited as a failure.

/// Replaces the process's panic hook (which prints the message to stderr) with one that logs,
/// through `tracing`, the place of a panic and the request it happened in.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            request_id = %crate::context::request_id(),
            %location,
            "panic (its message is withheld: it may quote a value)"
        );
    }));
}
