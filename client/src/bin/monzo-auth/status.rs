//! What the person sees on stderr while waiting: a spinner at a terminal, plain lines otherwise
//! (a log file or a CI job gains nothing from cursor movements).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use monzo_auth_client::{Progress, RetryReason};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// Status output, shared with the browser launcher's thread.
#[derive(Clone)]
pub struct Status {
    spinner: Option<ProgressBar>,
    /// The message shown last; in plain mode an unchanged message is not printed again.
    last: Arc<Mutex<Option<String>>>,
}

impl Status {
    /// A spinner on stderr if `interactive`, plain lines otherwise. Nothing is drawn until the
    /// first [`Status::set`].
    pub fn new(interactive: bool) -> Self {
        let spinner = interactive.then(|| {
            let target = ProgressDrawTarget::term_like_with_hz(
                Box::new(Narrowed(console::Term::stderr())),
                20,
            );
            let spinner = ProgressBar::with_draw_target(None, target);
            spinner.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}")
                    // A fixed template; it cannot fail.
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            spinner
        });
        Self {
            spinner,
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// Shows `message` as what is happening now.
    pub fn set(&self, message: impl Into<String>) {
        let message = message.into();
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_deref() == Some(message.as_str()) {
                return;
            }
            *last = Some(message.clone());
        }
        match &self.spinner {
            Some(spinner) => {
                if spinner.is_hidden() || spinner.is_finished() {
                    return;
                }
                spinner.set_message(message);
                spinner.enable_steady_tick(Duration::from_millis(100));
            }
            None => eprintln!("{message}"),
        }
    }

    /// Starts the elapsed-time count afresh (a new phase of waiting).
    pub fn restart_clock(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.reset_elapsed();
        }
    }

    /// Prints `text` on stderr without tearing the spinner.
    pub fn println(&self, text: &str) {
        match &self.spinner {
            Some(spinner) => spinner.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    /// Removes the spinner, leaving the terminal as it was.
    pub fn clear(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

/// Columns kept free at the right edge of the terminal.
const ECHO_ROOM: u16 = 3;

/// The stderr terminal, reported a few columns narrower than it is.
///
/// indicatif pads its line to the terminal's width and leaves the cursor in the last column.
/// On Ctrl-C the terminal itself echoes `^C` there, which wraps onto a new line, and clearing
/// the spinner then clears that line and leaves the spinner standing. With room kept free
/// the echo stays on the spinner's line and is cleared with it.
#[derive(Debug)]
struct Narrowed(console::Term);

impl TermLike for Narrowed {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(ECHO_ROOM).max(1)
    }

    fn height(&self) -> u16 {
        self.0.size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }

    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}
pub const WAITING: &str = "Waiting for you to approve in the browser…";
pub const WAITING_FOR_CODE: &str = "Waiting for the code to be entered and the login approved…";

/// The status line for a step of the wait.
pub fn describe(progress: Progress) -> String {
    match progress {
        Progress::Retrying { reason, after } => {
            let secs = after.as_secs_f64().ceil();
            match reason {
                RetryReason::SlowDown => format!("{reason}: polling every {secs} s…"),
                _ => format!("{reason}, retrying in {secs} s…"),
            }
        }
        _ => WAITING.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_lines_say_what_and_when() {
        assert_eq!(
            describe(Progress::Retrying {
                reason: RetryReason::MonzoUnavailable,
                after: Duration::from_millis(3_200),
            }),
            "Monzo unavailable, retrying in 4 s…"
        );
        assert_eq!(
            describe(Progress::Waiting {
                elapsed: Duration::from_secs(3)
            }),
            WAITING
        );
    }
}
