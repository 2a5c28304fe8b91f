//! Where `monzo-auth refresh` finds the refresh token: in what `monzo-auth login` printed or
//! wrote (its `json` or `env` format), or alone on one line. Never on the command line, where
//! `ps` and shell history would keep it.
//!
//! Nothing read here ever goes into a message: a malformed token file still holds secrets.

use std::fmt;
use std::io::Read;

use crate::output::Format;

/// The most that is read: a token file is well under a kilobyte.
pub const MAX_INPUT: u64 = 64 * 1024;

/// The name of the refresh token in the `env` format.
const ENV_NAME: &str = "MONZO_REFRESH_TOKEN";

/// A refresh token, and the format it came in.
pub struct Found {
    pub refresh_token: String,
    /// `json` or `env` as the input was written; `None` for a bare refresh token.
    pub format: Option<Format>,
}

impl fmt::Debug for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Found")
            .field("refresh_token", &"<redacted>")
            .field("format", &self.format)
            .finish()
    }
}

/// Why no refresh token was found. Each text completes "no refresh token in FILE: …".
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("it is empty")]
    Empty,
    #[error("it is larger than {} KiB, which no token file is", MAX_INPUT / 1024)]
    TooLarge,
    #[error("it is not UTF-8 text")]
    NotText,
    #[error("it is not valid JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error(
        "the token has no refresh_token (the service's Monzo client gets none unless it is confidential)"
    )]
    NoneInJson,
    #[error(
        "there is no {ENV_NAME}= line (the service's Monzo client gets none unless it is confidential)"
    )]
    NoneInEnv,
    #[error("the {ENV_NAME}= line is not valid shell quoting")]
    BadQuoting,
    #[error("the refresh token is empty")]
    EmptyToken,
    #[error("the refresh token has spaces or control characters in it")]
    BadCharacters,
    #[error(
        "expected what `monzo-auth login` printed (JSON or env lines), or a refresh token alone on one line"
    )]
    Unrecognised,
}

/// Reads `source` to the end, up to [`MAX_INPUT`].
pub fn read_text(source: impl Read) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    source
        .take(MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(ReadError::Input(InputError::TooLarge));
    }
    String::from_utf8(bytes).map_err(|_| ReadError::Input(InputError::NotText))
}

/// Why [`read_text`] failed.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    Input(InputError),
}

/// The refresh token in `text`: the `json` format (or the service's own answer), the `env`
/// format (`MONZO_REFRESH_TOKEN=…`, shell-quoted, `export ` allowed), or the token alone.
pub fn refresh_token_in(text: &str) -> Result<Found, InputError> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Err(InputError::Empty);
    }
    if text.starts_with('{') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|error| InputError::NotJson {
                line: error.line(),
                column: error.column(),
            })?;
        let token = match value.get("refresh_token") {
            Some(serde_json::Value::String(token)) => token.clone(),
            _ => return Err(InputError::NoneInJson),
        };
        return found(token, Some(Format::Json));
    }
    let assignments: Vec<(&str, &str)> = text.lines().filter_map(assignment).collect();
    if assignments
        .iter()
        .any(|(name, _)| name.starts_with("MONZO_"))
    {
        let (_, value) = assignments
            .iter()
            .rev()
            .find(|(name, _)| *name == ENV_NAME)
            .ok_or(InputError::NoneInEnv)?;
        let mut words = shell_words::split(value).map_err(|_| InputError::BadQuoting)?;
        return match words.len() {
            0 => Err(InputError::EmptyToken),
            1 => found(words.remove(0), Some(Format::Env)),
            _ => Err(InputError::BadCharacters),
        };
    }
    // A token is base64url-like: an `=` may pad its end, but one inside means `NAME=value`.
    if text.lines().count() > 1 || text.trim_end_matches('=').contains('=') {
        return Err(InputError::Unrecognised);
    }
    found(text.to_owned(), None)
}

/// `NAME=value` (after an optional `export `), for an env-style line with a valid name.
fn assignment(line: &str) -> Option<(&str, &str)> {
    let line = line.trim();
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let (name, value) = line.split_once('=')?;
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some((name, value))
}

fn found(token: String, format: Option<Format>) -> Result<Found, InputError> {
    if token.is_empty() {
        return Err(InputError::EmptyToken);
    }
    // It goes into a form body and back into files and shell lines: visible ASCII only.
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(InputError::BadCharacters);
    }
    Ok(Found {
        refresh_token: token,
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> (String, Option<Format>) {
        let found = refresh_token_in(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        (found.refresh_token, found.format)
    }

    fn refused(text: &str) -> InputError {
        match refresh_token_in(text) {
            Ok(found) => panic!("{text:?} gave {found:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn json_as_login_writes_it_or_as_the_service_answers() {
        let printed = r#"{"access_token":"acc","refresh_token":"eyJ.ref-resh_tok","expires":"2026-11-29T15:22:03Z","expires_in":21600,"token_type":"Bearer","user_id":"user_00009"}"#;
        assert_eq!(
            token(&format!("{printed}\n")),
            ("eyJ.ref-resh_tok".into(), Some(Format::Json))
        );
        let service = "  {\n \"token\": \"acc\",\n \"refresh_token\": \"r2\"\n}\n\n";
        assert_eq!(token(service), ("r2".into(), Some(Format::Json)));
        assert_eq!(
            token("\u{feff}{\"refresh_token\":\"r3\"}"),
            ("r3".into(), Some(Format::Json))
        );
    }

    #[test]
    fn json_without_a_refresh_token_says_so() {
        assert_eq!(refused(r#"{"access_token":"acc"}"#), InputError::NoneInJson);
        assert_eq!(refused(r#"{"refresh_token":null}"#), InputError::NoneInJson);
        assert_eq!(refused(r#"{"refresh_token":7}"#), InputError::NoneInJson);
        assert_eq!(refused(r#"{"refresh_token":""}"#), InputError::EmptyToken);
        assert_eq!(
            refused("{\"refresh_token\":\"secret-part"),
            InputError::NotJson {
                line: 1,
                column: 29
            }
        );
    }

    #[test]
    fn env_lines_as_login_writes_them() {
        let env = "MONZO_ACCESS_TOKEN='acc.ess='\n\
                   MONZO_REFRESH_TOKEN='ref'\\''resh'\n\
                   MONZO_USER_ID=user_00009\n\
                   MONZO_TOKEN_EXPIRES=2026-11-29T15:22:03Z\n";
        assert_eq!(token(env), ("ref'resh".into(), Some(Format::Env)));
        // Hand-edited: exported, commented, blank lines, unquoted, other variables.
        let edited = "# mine\nexport MONZO_REFRESH_TOKEN=eyJr\n\nOTHER=1\n";
        assert_eq!(token(edited), ("eyJr".into(), Some(Format::Env)));
    }

    #[test]
    fn env_lines_without_a_usable_refresh_token_say_so() {
        assert_eq!(
            refused("MONZO_ACCESS_TOKEN=acc\nMONZO_USER_ID=user_00009\n"),
            InputError::NoneInEnv
        );
        assert_eq!(refused("MONZO_REFRESH_TOKEN=\n"), InputError::EmptyToken);
        assert_eq!(
            refused("MONZO_REFRESH_TOKEN='open\n"),
            InputError::BadQuoting
        );
        assert_eq!(
            refused("MONZO_REFRESH_TOKEN=a b\n"),
            InputError::BadCharacters
        );
    }

    #[test]
    fn a_bare_token_on_one_line() {
        assert_eq!(
            token("eyJ.refresh-token_x==\n"),
            ("eyJ.refresh-token_x==".into(), None)
        );
        assert_eq!(token("  eyJr  \r\n"), ("eyJr".into(), None));
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(refused(""), InputError::Empty);
        assert_eq!(refused(" \n\t\n"), InputError::Empty);
        assert_eq!(refused("one\ntwo\n"), InputError::Unrecognised);
        assert_eq!(refused("SOME_VAR=value\n"), InputError::Unrecognised);
        assert_eq!(refused("two words"), InputError::BadCharacters);
        assert_eq!(refused("tok\u{1b}[2Jen"), InputError::BadCharacters);
    }

    #[test]
    fn no_message_repeats_the_input() {
        for text in [
            "{\"refresh_token\":\"secret-part",
            "MONZO_REFRESH_TOKEN='secret-part",
            "secret-part\nsecret-part",
            "secret-part with spaces",
        ] {
            let message = refused(text).to_string();
            assert!(!message.contains("secret"), "{message}");
            assert_eq!(message.lines().count(), 1);
        }
        let found = refresh_token_in("secret-part").unwrap();
        assert!(!format!("{found:?}").contains("secret"));
    }

    #[test]
    fn reading_stops_at_the_limit_and_wants_text() {
        let big = vec![b'a'; MAX_INPUT as usize + 1];
        assert!(matches!(
            read_text(&big[..]),
            Err(ReadError::Input(InputError::TooLarge))
        ));
        assert_eq!(read_text(&big[1..]).unwrap().len(), MAX_INPUT as usize);
        assert!(matches!(
            read_text(&b"\xff\xfe"[..]),
            Err(ReadError::Input(InputError::NotText))
        ));
    }
}
