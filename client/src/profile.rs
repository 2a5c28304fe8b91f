//! Logins kept on this machine, one per profile: the one holder of each refresh token.
//!
//! A profile is a small JSON file, readable by its owner only, under the platform's
//! configuration directory (`$XDG_CONFIG_HOME/monzo-auth/profiles/NAME.json` on Linux, the
//! Application Support folder on macOS, `%APPDATA%` on Windows). It records the service, Monzo's
//! API, the user, the token's expiry and which [`Backend`] holds the tokens: the OS credential
//! store (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows, through the
//! `keyring` crate), or the file itself where there is no credential store. The record of the
//! backend is what keeps a later `monzo-auth token` from cron or systemd (no session bus) from
//! silently reading another place: it reports the keyring unreachable instead.
//!
//! Every change is atomic: a file is replaced whole (a new file renamed over it), a keyring
//! item's secret is replaced in one call. [`Store::lock`] serializes whoever refreshes.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// The keyring service name of every profile's item.
const KEYRING_SERVICE: &str = "monzo-auth";

/// A profile's name: 1 to 64 letters, digits, `.`, `_` or `-`, not starting with a dot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProfileName(String);

impl ProfileName {
    /// The name, or why it is not one.
    ///
    /// ```
    /// use monzo_auth_client::profile::ProfileName;
    /// assert!(ProfileName::parse("default").is_ok());
    /// assert!(ProfileName::parse("../x").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, ProfileError> {
        let fine = !text.is_empty()
            && text.len() <= 64
            && !text.starts_with('.')
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if fine {
            Ok(Self(text.to_owned()))
        } else {
            Err(ProfileError::BadName(text.chars().take(64).collect()))
        }
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a profile's tokens are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The OS credential store.
    Keyring,
    /// The profile's own file, readable by its owner only.
    File,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Keyring => "keyring",
            Backend::File => "file",
        })
    }
}

/// A profile's tokens. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// Monzo's access token.
    pub access_token: String,
    /// Monzo's refresh token (one-time: each refresh rotates it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// One stored login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The monzo-auth service it logged in (and refreshes) through.
    pub service: Url,
    /// Monzo's API, as the service advertised it at login.
    pub monzo_api_url: Option<Url>,
    /// Monzo's user id.
    pub user_id: String,
    /// When the access token expires, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// Where the tokens are.
    pub backend: Backend,
    /// The tokens.
    pub secrets: Secrets,
    /// When Monzo was last seen refusing this login (its token rejected, its refresh refused),
    /// in seconds since the Unix epoch: the login is dead until a new login or a successful
    /// refresh clears it.
    pub rejected_at: Option<u64>,
    /// When the person approved this login at Monzo (a browser or device login; not known for
    /// an imported one), in seconds since the Unix epoch: Monzo asks users to approve an app
    /// again every 90 days.
    pub approved_at: Option<u64>,
}

/// The profile file: the facts, and the tokens only when the file is their backend.
#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    service: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monzo_api_url: Option<String>,
    user_id: String,
    expires_at: u64,
    backend: Backend,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secrets: Option<Secrets>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rejected_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approved_at: Option<u64>,
}

impl Record {
    /// The profile, its URLs checked by [`Store::record`].
    fn into_profile(self, secrets: Secrets) -> Profile {
        Profile {
            service: Url::parse(&self.service).expect("checked when read"),
            monzo_api_url: self.monzo_api_url.and_then(|url| Url::parse(&url).ok()),
            user_id: self.user_id,
            expires_at: self.expires_at,
            backend: self.backend,
            secrets,
            rejected_at: self.rejected_at,
            approved_at: self.approved_at,
        }
    }
}

/// What a profile lookup or change can run into.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Not a usable profile name.
    #[error("{0:?} is not a profile name (letters, digits, '.', '_' and '-', at most 64)")]
    BadName(String),
    /// No login is stored under this name.
    #[error("not logged in (no profile {0}): run `monzo-auth login`")]
    NotLoggedIn(ProfileName),
    /// The profile's tokens are in the keyring, which cannot be reached from here (no Secret
    /// Service on this session's bus: cron, systemd, SSH).
    #[error(
        "the keyring is not reachable from here, and profile {0} keeps its login there: run this \
         in the desktop session that logged in, or log in again with `--store file`"
    )]
    KeyringUnreachable(ProfileName),
    /// The keyring is there but refuses access (locked, or the unlock prompt was dismissed).
    #[error("the keyring is locked or refused access; unlock it and try again")]
    KeyringLocked,
    /// Found before a login: the keyring could not keep it (locked, no collection, no answer).
    #[error(
        "the keyring cannot keep a login right now ({0}): unlock it and try again, or log in \
         with `--store file` (a plain-text file readable by you only)"
    )]
    KeyringUnusable(String),
    /// The keyring answered with an error of its own.
    #[error("the keyring failed: {0}")]
    Keyring(String),
    /// The profile names a keyring item that is gone.
    #[error("profile {0}'s login is no longer in the keyring: log in again")]
    KeyringEntryMissing(ProfileName),
    /// The profile file cannot be read as one.
    #[error("profile {0} is damaged ({1}): log in again")]
    Corrupt(ProfileName, String),
    /// The platform has no configuration directory (no HOME).
    #[error("no configuration directory here (HOME is not set)")]
    NoConfigDir,
    /// Reading or writing the profile's files failed.
    #[error("cannot {what} {}: {error}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        error: std::io::Error,
    },
}

/// The profiles of this user.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// A held lock on a profile: whoever holds it is the only one refreshing. Released on drop.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ProfileError + 'a {
    move |error| ProfileError::Io {
        what,
        path: path.to_owned(),
        error,
    }
}

fn keyring_error(name: &ProfileName, error: keyring::Error) -> ProfileError {
    // Never shown whole: some variants carry the bytes the keyring held.
    match error {
        keyring::Error::NoEntry => ProfileError::KeyringEntryMissing(name.clone()),
        keyring::Error::NoDefaultStore => ProfileError::KeyringUnreachable(name.clone()),
        keyring::Error::NoStorageAccess(_) => ProfileError::KeyringLocked,
        keyring::Error::PlatformFailure(cause) => ProfileError::Keyring(cause.to_string()),
        keyring::Error::BadEncoding(_) | keyring::Error::BadDataFormat(..) => {
            ProfileError::Corrupt(name.clone(), "the keyring item is not a login".into())
        }
        _ => ProfileError::Keyring("unexpected keyring error".into()),
    }
}

/// Whether the OS credential store can be reached from this process.
pub fn keyring_reachable() -> bool {
    keyring::Entry::store_status().is_ok()
}

/// Whether the OS keyring could keep a login right now, as [`keyring_state`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyringState {
    /// No keyring here (no Secret Service on this session's bus: SSH, cron, a server).
    Absent,
    /// It can store a login.
    Usable,
    /// It is there but could not store one now: why.
    Unusable(String),
}

/// How long [`keyring_state`] waits for the keyring's answer.
pub const KEYRING_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Checks, without prompting and within [`KEYRING_CHECK_TIMEOUT`], whether the keyring could
/// keep a login: on Linux, that the Secret Service's default collection exists and is unlocked
/// (a locked one refuses a new item, and unlocking it would prompt). Elsewhere a reachable
/// store is taken as usable.
pub fn keyring_state() -> KeyringState {
    if !keyring_reachable() {
        return KeyringState::Absent;
    }
    let (answer, answered) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = answer.send(default_collection_state());
    });
    answered
        .recv_timeout(KEYRING_CHECK_TIMEOUT)
        .unwrap_or_else(|_| {
            KeyringState::Unusable(format!(
                "it did not answer within {} s",
                KEYRING_CHECK_TIMEOUT.as_secs()
            ))
        })
}

#[cfg(target_os = "linux")]
fn default_collection_state() -> KeyringState {
    use secret_service::EncryptionType;
    use secret_service::blocking::SecretService;
    let service = match SecretService::connect(EncryptionType::Plain) {
        Ok(service) => service,
        Err(_) => return KeyringState::Absent,
    };
    match service.get_default_collection() {
        Err(_) => KeyringState::Unusable("it has no default collection to keep logins in".into()),
        Ok(collection) => match collection.is_locked() {
            Ok(false) => KeyringState::Usable,
            Ok(true) => KeyringState::Unusable("it is locked".into()),
            Err(error) => KeyringState::Unusable(format!("it failed: {error}")),
        },
    }
}

#[cfg(not(target_os = "linux"))]
fn default_collection_state() -> KeyringState {
    KeyringState::Usable
}

impl Store {
    /// The profiles under the platform's configuration directory.
    ///
    /// # Errors
    ///
    /// [`ProfileError::NoConfigDir`] where the platform has none.
    pub fn open() -> Result<Self, ProfileError> {
        let config = dirs::config_dir().ok_or(ProfileError::NoConfigDir)?;
        Ok(Self::at(config.join("monzo-auth").join("profiles")))
    }

    /// The profiles in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Where the profile file of `name` is (or would be).
    pub fn path_of(&self, name: &ProfileName) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    fn ensure_dir(&self) -> Result<(), ProfileError> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&self.dir)
            .map_err(io("create the directory", &self.dir))
    }

    /// Takes the profile's lock, waiting while another process holds it (for instance while
    /// it refreshes). Blocks: call it off an async runtime's worker.
    ///
    /// # Errors
    ///
    /// [`ProfileError::Io`] if the lock file cannot be made or locked.
    pub fn lock(&self, name: &ProfileName) -> Result<ProfileLock, ProfileError> {
        self.ensure_dir()?;
        let path = self.dir.join(format!("{name}.lock"));
        let file = private_options()
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open", &path))?;
        fs4::FileExt::lock(&file).map_err(io("lock", &path))?;
        Ok(ProfileLock { _file: file })
    }

    /// The stored profile `name`, tokens included.
    ///
    /// # Errors
    ///
    /// [`ProfileError::NotLoggedIn`] when there is none; [`ProfileError::KeyringUnreachable`]
    /// or [`ProfileError::KeyringLocked`] when its tokens are in a keyring this process cannot
    /// use (never a fallback to another place); [`ProfileError::Corrupt`], [`ProfileError::Io`].
    pub fn load(&self, name: &ProfileName) -> Result<Profile, ProfileError> {
        let mut record = self.record(name)?;
        let secrets = match (record.backend, record.secrets.take()) {
            (Backend::File, Some(secrets)) => secrets,
            (Backend::File, None) => {
                return Err(ProfileError::Corrupt(name.clone(), "no tokens".into()));
            }
            (Backend::Keyring, _) => self.keyring_secrets(name)?,
        };
        Ok(record.into_profile(secrets))
    }

    /// The stored facts of `name` without its tokens (which may be unreachable): what `status`
    /// prints whatever else fails.
    ///
    /// # Errors
    ///
    /// As [`Store::load`], without the keyring's.
    pub fn facts(&self, name: &ProfileName) -> Result<Profile, ProfileError> {
        Ok(self.record(name)?.into_profile(Secrets {
            access_token: String::new(),
            refresh_token: None,
        }))
    }

    fn record(&self, name: &ProfileName) -> Result<Record, ProfileError> {
        let path = self.path_of(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProfileError::NotLoggedIn(name.clone()));
            }
            Err(error) => return Err(io("read", &path)(error)),
        };
        let record: Record = serde_json::from_str(&text).map_err(|error| {
            ProfileError::Corrupt(name.clone(), format!("line {}", error.line()))
        })?;
        let url = |text: &str| Url::parse(text).ok();
        if url(&record.service).is_none()
            || record
                .monzo_api_url
                .as_deref()
                .is_some_and(|u| url(u).is_none())
        {
            return Err(ProfileError::Corrupt(
                name.clone(),
                "a URL is malformed".into(),
            ));
        }
        if record.version != 1 {
            return Err(ProfileError::Corrupt(
                name.clone(),
                format!("version {} is newer than this monzo-auth's", record.version),
            ));
        }
        Ok(record)
    }

    fn entry(name: &ProfileName) -> Result<keyring::Entry, ProfileError> {
        keyring::Entry::new(KEYRING_SERVICE, &format!("profile:{name}"))
            .map_err(|error| keyring_error(name, error))
    }

    fn keyring_secrets(&self, name: &ProfileName) -> Result<Secrets, ProfileError> {
        let text = Self::entry(name)?
            .get_password()
            .map_err(|error| keyring_error(name, error))?;
        serde_json::from_str(&text).map_err(|_| {
            ProfileError::Corrupt(name.clone(), "the keyring item is not a login".into())
        })
    }

    /// Stores `profile` under `name` in its backend, replacing what was there; the file last,
    /// so that it never names tokens that are not there yet.
    ///
    /// # Errors
    ///
    /// The keyring's ([`ProfileError::KeyringUnreachable`], [`ProfileError::KeyringLocked`],
    /// [`ProfileError::Keyring`]) or [`ProfileError::Io`].
    pub fn save(&self, name: &ProfileName, profile: &Profile) -> Result<(), ProfileError> {
        self.ensure_dir()?;
        let secrets = match profile.backend {
            Backend::File => Some(profile.secrets.clone()),
            Backend::Keyring => {
                let text =
                    serde_json::to_string(&profile.secrets).expect("a login serializes as JSON");
                Self::entry(name)?
                    .set_password(&text)
                    .map_err(|error| keyring_error(name, error))?;
                None
            }
        };
        let record = Record {
            version: 1,
            service: profile.service.to_string(),
            monzo_api_url: profile.monzo_api_url.as_ref().map(Url::to_string),
            user_id: profile.user_id.clone(),
            expires_at: profile.expires_at,
            backend: profile.backend,
            secrets,
            rejected_at: profile.rejected_at,
            approved_at: profile.approved_at,
        };
        let text = serde_json::to_string_pretty(&record).expect("a profile serializes as JSON");
        replace_private(&self.path_of(name), &text)
    }

    /// Forgets `name`: its keyring item (if any) and its file.
    ///
    /// # Errors
    ///
    /// The keyring's, or [`ProfileError::Io`]; an already missing item or file is no error.
    pub fn remove(&self, name: &ProfileName, backend: Backend) -> Result<(), ProfileError> {
        if backend == Backend::Keyring {
            match Self::entry(name)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(error) => return Err(keyring_error(name, error)),
            }
        }
        let path = self.path_of(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io("remove", &path)(error)),
        }
    }

    /// Every stored profile's name, sorted.
    ///
    /// # Errors
    ///
    /// [`ProfileError::Io`] if the directory exists but cannot be read.
    pub fn names(&self) -> Result<Vec<ProfileName>, ProfileError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(io("read", &self.dir)(error)),
        };
        let mut names: Vec<ProfileName> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let file = entry.file_name().into_string().ok()?;
                ProfileName::parse(file.strip_suffix(".json")?).ok()
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Writes `text` to a new owner-only file next to `path`, flushes it to disk and renames it
/// over `path`: a reader sees the old file or the new one, never part of either.
fn replace_private(path: &Path, text: &str) -> Result<(), ProfileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".profile-")
        .tempfile_in(dir)
        .map_err(io("create a file in", dir))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .map_err(io("write", file.path()))?;
    file.persist(path)
        .map_err(|error| io("replace", path)(error.error))?;
    Ok(())
}
