//! A handle that stops a wait from elsewhere (a Ctrl-C handler, a UI's button).

use std::fmt;
use std::sync::Arc;

use tokio::sync::watch;

/// A cheap, clonable handle that cancels a [`Client::wait_for_token`](crate::Client::wait_for_token):
/// once [`cancel`](Cancel::cancel) is called on any clone, the wait returns
/// [`Error::Cancelled`](crate::Error::Cancelled) promptly, even in the middle of a request or a
/// pause between polls. Cancelling is permanent; start a new handle for a new wait.
///
/// # Example
///
/// ```
/// use monzo_auth_client::Cancel;
///
/// let cancel = Cancel::new();
/// let for_handler = cancel.clone();
/// assert!(!cancel.is_cancelled());
/// for_handler.cancel();
/// assert!(cancel.is_cancelled());
/// ```
#[derive(Clone)]
pub struct Cancel {
    // A watch channel rather than a bare flag so that waiters can sleep until it flips.
    state: Arc<watch::Sender<bool>>,
}

impl Cancel {
    /// A handle that is not cancelled yet.
    ///
    /// ```
    /// let cancel = monzo_auth_client::Cancel::new();
    /// assert!(!cancel.is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self {
            state: Arc::new(watch::channel(false).0),
        }
    }

    /// Cancels every wait using this handle or a clone of it, now and later.
    ///
    /// ```
    /// let cancel = monzo_auth_client::Cancel::new();
    /// cancel.cancel();
    /// cancel.cancel(); // cancelling twice is harmless
    /// assert!(cancel.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        // send_replace works with no receiver alive, unlike send.
        self.state.send_replace(true);
    }

    /// Whether [`cancel`](Cancel::cancel) has been called.
    ///
    /// ```
    /// let cancel = monzo_auth_client::Cancel::new();
    /// assert!(!cancel.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        *self.state.borrow()
    }

    /// Resolves once the handle is cancelled (at once if it already is). Useful to make other
    /// waits of an app stop together with the login.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cancel = monzo_auth_client::Cancel::new();
    /// cancel.cancel();
    /// cancel.cancelled().await;
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        let mut receiver = self.state.subscribe();
        // Fails only if the sender is gone, and `self` holds it.
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
    }
}

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancel")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_when_another_clone_cancels() {
        let cancel = Cancel::new();
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.cancelled().await }
        });
        tokio::task::yield_now().await;
        cancel.clone().cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
    }
}
