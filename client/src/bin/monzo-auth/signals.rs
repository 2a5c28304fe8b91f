//! Ctrl-C and SIGTERM, heard by the command instead of ending the process.

use monzo_auth_client::Cancel;

use crate::error::CliError;

/// Ctrl-C and SIGTERM cancel the login instead of killing the process, so that the spinner is
/// cleared and the exit is reported.
pub fn forward_signals(cancel: &Cancel) -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered now, before the first request, so an early Ctrl-C is not lost.
        let register = |kind| {
            signal(kind)
                .map_err(|error| CliError::Runtime(format!("cannot handle signals: {error}")))
        };
        let mut interrupt = register(SignalKind::interrupt())?;
        let mut terminate = register(SignalKind::terminate())?;
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            cancel.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
    }
    Ok(())
}
