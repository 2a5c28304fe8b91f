//! The token as the CLI hands it over: the formats, and the file it may go into.

use std::io::{self, Write as _};
use std::path::Path;

use clap::ValueEnum;
use monzo_auth_client::Token;

/// How the token is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The token as one line of JSON (access_token, refresh_token, expires, expires_in,
    /// token_type, user_id).
    Json,
    /// MONZO_ACCESS_TOKEN=…, MONZO_REFRESH_TOKEN=…, MONZO_USER_ID=…, MONZO_TOKEN_EXPIRES=…,
    /// one per line, quoted for a POSIX shell where needed.
    Env,
    /// The access token alone.
    Token,
}

/// `token` in `format`, ending with a newline.
pub fn render(token: &Token, format: Format) -> String {
    match format {
        // Serializing plain strings and numbers cannot fail.
        Format::Json => serde_json::to_string(token).unwrap_or_default() + "\n",
        Format::Env => {
            let mut lines = vec![("MONZO_ACCESS_TOKEN", token.access_token.as_str())];
            if let Some(refresh) = &token.refresh_token {
                lines.push(("MONZO_REFRESH_TOKEN", refresh));
            }
            lines.push(("MONZO_USER_ID", &token.user_id));
            lines.push(("MONZO_TOKEN_EXPIRES", &token.expires));
            lines
                .into_iter()
                .map(|(name, value)| format!("{name}={}\n", shell_words::quote(value)))
                .collect()
        }
        Format::Token => format!("{}\n", token.access_token),
    }
}

/// Writes `contents` to stdout.
pub fn to_stdout(contents: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(contents.as_bytes())?;
    stdout.flush()
}

/// Writes `contents` to `path` so that only its owner can read it: a new file is created with
/// mode 0600, and an existing one is narrowed to 0600 *before* it is truncated and written, so
/// the secret is never in a file others can read.
pub fn to_private_file(path: &Path, contents: &str) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.set_len(0)?;
    file.write_all(contents.as_bytes())?;
    // A token lost to a crash right after we said it was saved would mean logging in again.
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(refresh: Option<&str>) -> Token {
        serde_json::from_value(serde_json::json!({
            "token": "acc.ess-tok_en=",
            "refresh_token": refresh,
            "expires": "2026-11-29T15:22:03Z",
            "expires_in": 21600,
            "token_type": "Bearer",
            "user_id": "user_00009",
        }))
        .unwrap()
    }

    #[test]
    fn json_is_one_line_with_the_documented_names() {
        let text = render(&token(Some("ref")), Format::Json);
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["access_token"], "acc.ess-tok_en=");
        assert_eq!(value["refresh_token"], "ref");
        assert_eq!(value["expires"], "2026-11-29T15:22:03Z");
        assert_eq!(value["expires_in"], 21600);
        assert_eq!(value["token_type"], "Bearer");
        assert_eq!(value["user_id"], "user_00009");
        let without = render(&token(None), Format::Json);
        assert!(!without.contains("refresh_token"), "{without}");
    }

    #[test]
    fn env_lines_are_quoted_for_the_shell_where_needed() {
        assert_eq!(
            render(&token(Some("it's")), Format::Env),
            "MONZO_ACCESS_TOKEN='acc.ess-tok_en='\n\
             MONZO_REFRESH_TOKEN='it'\\''s'\n\
             MONZO_USER_ID=user_00009\n\
             MONZO_TOKEN_EXPIRES=2026-11-29T15:22:03Z\n"
        );
        assert!(!render(&token(None), Format::Env).contains("REFRESH"));
    }

    #[test]
    fn token_format_is_the_access_token_alone() {
        assert_eq!(render(&token(None), Format::Token), "acc.ess-tok_en=\n");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_even_when_they_existed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("monzo-auth-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token.json");
        std::fs::write(&path, "an older and much longer content\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        to_private_file(&path, "new\n").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let fresh = dir.join("fresh.json");
        to_private_file(&fresh, "x").unwrap();
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
