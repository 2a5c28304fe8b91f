//! Opening the login URL in the person's browser.
//!
//! `BROWSER` is honoured as the convention has it (and as Python's `webbrowser` reads it): a
//! list of commands separated by `:` (`;` on Windows), tried in order; each is split like a
//! shell would, `%s` stands for the URL (`%%` for a literal `%`), and without `%s` the URL is
//! appended. Without `BROWSER` the platform's opener is used. If nothing works, the URL is
//! printed for the person to open by hand.

use std::io::IsTerminal as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use url::Url;

use crate::status::Status;

/// A launcher that fails does so at once (not found, no handler for URLs); one still running
/// after this long has handed the URL over, or is the browser itself. Until then a failure
/// moves on to the next candidate; after it, it must not, or a browser closed an hour later
/// would make another one open.
const LAUNCH_GRACE: Duration = Duration::from_secs(5);

#[cfg(windows)]
const LIST_SEPARATOR: char = ';';
#[cfg(not(windows))]
const LIST_SEPARATOR: char = ':';

/// Whether to start a browser: an explicit `BROWSER` always; otherwise only where there is a
/// display to show it on (not over SSH, not on a Linux console or server without `DISPLAY` or
/// `WAYLAND_DISPLAY`), so that no launcher's noise reaches a terminal where nothing can open.
pub fn wanted() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    if set("BROWSER") {
        return true;
    }
    if set("SSH_CONNECTION") || set("SSH_TTY") {
        return false;
    }
    cfg!(any(target_os = "macos", windows)) || set("DISPLAY") || set("WAYLAND_DISPLAY")
}

/// Opens `url` in a browser, in the background: the login goes on meanwhile, and if no
/// browser could be started the URL is printed through `status`.
pub fn open(url: &Url, status: Status) {
    let browser_var = std::env::var("BROWSER").ok();
    let candidates = candidates(browser_var.as_deref(), url.as_str());
    // A browser's chatter on stderr would tear the spinner; without a terminal there is no
    // spinner, and what a failing launcher says may help whoever reads the log.
    let inherit_stderr = !std::io::stderr().is_terminal();
    let url = url.clone();
    std::thread::spawn(move || {
        if let Err(why) = launch_first(&candidates, inherit_stderr) {
            status.println(&format!(
                "Could not open a browser ({why}). Open this URL to log in to Monzo:\n  {url}"
            ));
        }
    });
}

/// The commands to try, each a program and its arguments with the URL in place.
pub fn candidates(browser_var: Option<&str>, url: &str) -> Vec<Vec<String>> {
    match browser_var.map(str::trim).filter(|var| !var.is_empty()) {
        Some(var) => var
            .split(LIST_SEPARATOR)
            // An entry that does not split (an unbalanced quote) cannot be run; skip it.
            .filter_map(|entry| shell_words::split(entry).ok())
            .filter(|words| !words.is_empty())
            .map(|words| with_url(words, url))
            .collect(),
        None => vec![platform_default(url)],
    }
}

/// Puts `url` where `%s` is in `words`, or after them if no word has `%s`.
fn with_url(words: Vec<String>, url: &str) -> Vec<String> {
    let placeholder = words.iter().any(|word| has_placeholder(word));
    let mut words: Vec<String> = words.iter().map(|word| substitute(word, url)).collect();
    if !placeholder {
        words.push(url.to_owned());
    }
    words
}

/// Whether `word` has a `%s` that is not the tail of an escaped `%%`.
fn has_placeholder(word: &str) -> bool {
    substitute(word, "\u{0}") != substitute(word, "\u{1}")
}

/// Replaces `%s` with `url` and `%%` with `%`; any other `%` stays as it is.
fn substitute(word: &str, url: &str) -> String {
    let mut out = String::with_capacity(word.len() + url.len());
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.peek() {
                Some('s') => {
                    chars.next();
                    out.push_str(url);
                    continue;
                }
                Some('%') => {
                    chars.next();
                    out.push('%');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

#[cfg(target_os = "macos")]
fn platform_default(url: &str) -> Vec<String> {
    vec!["open".into(), url.into()]
}

#[cfg(windows)]
fn platform_default(url: &str) -> Vec<String> {
    // `start` runs under cmd.exe, which reads `&` as "and then": the URL's query separators
    // must be escaped. The empty first argument is the window title `start` expects.
    vec![
        "cmd".into(),
        "/c".into(),
        "start".into(),
        String::new(),
        url.replace('&', "^&"),
    ]
}

#[cfg(not(any(target_os = "macos", windows)))]
fn platform_default(url: &str) -> Vec<String> {
    vec!["xdg-open".into(), url.into()]
}

/// Tries each candidate in turn; the error says why the last one failed.
fn launch_first(candidates: &[Vec<String>], inherit_stderr: bool) -> Result<(), String> {
    let mut why = "no browser command to try".to_owned();
    for words in candidates {
        match launch(words, inherit_stderr) {
            Ok(()) => return Ok(()),
            Err(error) => why = error,
        }
    }
    Err(why)
}

/// Starts one command, detached from our terminal, and sees whether it fails at once.
/// Messages name the program only: its arguments carry the login URL.
fn launch(words: &[String], inherit_stderr: bool) -> Result<(), String> {
    let (program, args) = words.split_first().ok_or("an empty command")?;
    let mut command = Command::new(program);
    command
        .args(args)
        // Neither may the browser read our input nor write into our stdout, which is for the
        // token alone.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(if inherit_stderr {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    // Its own process group: Ctrl-C at our terminal must stop us, not the browser.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot run {program}: {error}"))?;
    let deadline = Instant::now() + LAUNCH_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(exit)) if exit.success() => return Ok(()),
            Ok(Some(exit)) => return Err(format!("{program} failed ({exit})")),
            Ok(None) if Instant::now() >= deadline => {
                reap_later(child);
                return Ok(());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(error) => return Err(format!("cannot wait for {program}: {error}")),
        }
    }
}

/// Waits for a long-running browser on a thread of its own, so it does not linger as a
/// zombie while we run.
fn reap_later(mut child: Child) {
    std::thread::spawn(move || {
        let _ = child.wait();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://auth.example/?client_id=c&state=s";

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn browser_commands_get_the_url_appended() {
        assert_eq!(
            candidates(Some("firefox"), URL),
            vec![words(&["firefox", URL])]
        );
        assert_eq!(
            candidates(Some("'/opt/My Browser/run' --new-tab"), URL),
            vec![words(&["/opt/My Browser/run", "--new-tab", URL])]
        );
    }

    #[test]
    fn percent_s_is_replaced_instead() {
        assert_eq!(
            candidates(Some("browser --url=%s --private"), URL),
            vec![words(&["browser", &format!("--url={URL}"), "--private"])]
        );
        // `%%s` is a literal `%s`, so the URL is appended.
        assert_eq!(
            candidates(Some("echo 100%%s"), URL),
            vec![words(&["echo", "100%s", URL])]
        );
        assert_eq!(substitute("a%%b%s%x", "U"), "a%bU%x");
    }

    #[cfg(not(windows))]
    #[test]
    fn alternatives_are_kept_in_order_and_broken_ones_skipped() {
        let list = candidates(Some("first --a:'unbalanced: :second"), URL);
        assert_eq!(
            list,
            vec![words(&["first", "--a", URL]), words(&["second", URL])]
        );
    }

    #[test]
    fn without_browser_the_platform_opener_is_used() {
        for var in [None, Some(""), Some("  ")] {
            assert_eq!(candidates(var, URL), vec![platform_default(URL)]);
        }
        if cfg!(target_os = "linux") {
            assert_eq!(platform_default(URL), words(&["xdg-open", URL]));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_launcher_falls_through_to_the_next() {
        let list = vec![
            words(&["/nonexistent/browser", URL]),
            words(&["false"]),
            words(&["true", URL]),
        ];
        assert_eq!(launch_first(&list, false), Ok(()));
        let error = launch_first(&list[..2], false).unwrap_err();
        assert!(error.starts_with("false failed"), "{error}");
        assert!(!error.contains("state="), "{error}");
    }
}
