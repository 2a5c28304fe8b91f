//! The token as the CLI hands it over: the formats, and the file it may go into.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use monzo_auth_client::Token;

use crate::error::CliError;

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

/// A file being replaced atomically: the new contents go into a private temporary file next
/// to it, which is then renamed over it. Readers see the old file or the new one, never a
/// half-written one, and a failed write leaves the old one as it was: `refresh` may write
/// over the very file it read the refresh token from.
///
/// The temporary file is made before the refresh, so that a directory that cannot be written
/// is found out while the old refresh token still works. Dropped without
/// [`commit`](PendingFile::commit), it is removed.
pub struct PendingFile {
    /// The file to replace: `--output`, or the file it links to.
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
}

impl PendingFile {
    /// Creates the temporary file (mode 0600) in the directory of `path`. A symbolic link at
    /// `path` is followed: the file it names is replaced and the link stays.
    pub fn create(path: &Path) -> io::Result<Self> {
        let target = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(path)?,
            _ => path.to_owned(),
        };
        if target.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            ));
        }
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "it names no file"))?;
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut attempt = 0;
        loop {
            let mut suffix = [0u8; 6];
            // Uniqueness is all the name needs; create_new guards against a clash.
            let _ = getrandom::fill(&mut suffix);
            let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
            let mut temp_name = std::ffi::OsString::from(".");
            temp_name.push(name);
            temp_name.push(format!(".{}.{suffix}.tmp", std::process::id()));
            let temp = dir.join(temp_name);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(&temp) {
                Ok(file) => {
                    return Ok(Self {
                        target,
                        temp,
                        file: Some(file),
                    });
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Writes `contents`, flushes them to disk and puts the file in place of the target.
    pub fn commit(mut self, contents: &str) -> io::Result<()> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io::Error::other("already committed"))?;
        // Narrowed again in case a umask or ACL got in the way of the mode asked for.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.target)?;
        // The rename itself is durable once the directory is synced; some file systems
        // cannot sync a directory, and the file is in place either way.
        #[cfg(unix)]
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|dir| dir.sync_all());
        }
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            self.file.take();
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Checks that `--output`'s directory exists: found out now rather than once the token is
/// here, which a failed write would lose.
pub fn check_output_dir(path: &Path) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--output: the directory {} does not exist",
            dir.display()
        )))
    }
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

    /// A fresh directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "monzo-auth-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    #[test]
    fn a_pending_file_replaces_the_old_one_privately_and_whole() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("replace");
        let path = dir.join("token.json");
        std::fs::write(&path, "old and longer\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let pending = PendingFile::create(&path).unwrap();
        // Until the commit, the old file is untouched; the temporary one is private.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old and longer\n");
        let names = entries(&dir);
        assert_eq!(names.len(), 2, "{names:?}");
        let temp = dir.join(names.iter().find(|n| n.ends_with(".tmp")).unwrap());
        assert_eq!(
            std::fs::metadata(&temp).unwrap().permissions().mode() & 0o777,
            0o600
        );
        pending.commit("new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(entries(&dir), ["token.json"]);
        // A file that did not exist yet.
        PendingFile::create(&dir.join("fresh.env"))
            .unwrap()
            .commit("x")
            .unwrap();
        assert_eq!(entries(&dir), ["fresh.env", "token.json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_pending_file_dropped_uncommitted_leaves_no_trace() {
        let dir = scratch("drop");
        let path = dir.join("token.json");
        std::fs::write(&path, "old\n").unwrap();
        drop(PendingFile::create(&path).unwrap());
        assert_eq!(entries(&dir), ["token.json"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_pending_file_follows_a_link_and_refuses_a_directory() {
        let dir = scratch("link");
        std::fs::create_dir(dir.join("real")).unwrap();
        std::fs::write(dir.join("real/token.json"), "old\n").unwrap();
        std::os::unix::fs::symlink("real/token.json", dir.join("link.json")).unwrap();
        PendingFile::create(&dir.join("link.json"))
            .unwrap()
            .commit("new\n")
            .unwrap();
        assert!(
            std::fs::symlink_metadata(dir.join("link.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("real/token.json")).unwrap(),
            "new\n"
        );
        assert_eq!(entries(&dir.join("real")), ["token.json"]);
        assert!(PendingFile::create(&dir.join("real")).is_err());
        assert!(PendingFile::create(&dir.join("missing/token.json")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
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
