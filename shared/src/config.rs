//! Typed configuration, read once from the environment.
//!
//! Every problem names the variable it is about and never repeats a secret's value, so the local
//! server can stop with one clear line and a Lambda function can log one.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// Where sessions are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    Sqlite(PathBuf),
    Memory,
    DynamoDb { table: String },
}

/// How the client secret arrives.
#[derive(Debug, Clone)]
pub enum SecretSetting {
    Plain(SecretString),
    /// KMS ciphertext (given in base64), decrypted at start-up.
    Kms(Vec<u8>),
}

/// One of the three Lambda functions; each needs a different part of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaFunction {
    /// `/new`: builds login URLs, so needs the client id; never the secret.
    New,
    /// `/callback` and the `/device` pages: the store, and the client id for the login URLs
    /// the device pages lead to.
    Callback,
    /// `/token`: exchanges codes, so needs the client id and the secret.
    Token,
}

/// Where the configuration is read, which decides what is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The local server: `MONZO_CLIENT_ID` and a secret are required.
    Local,
    /// The local server with the built-in stand-in, which supplies the client.
    Demo,
    /// A Lambda function: the store follows `TABLE_NAME`, and only the token function needs the
    /// secret.
    Lambda(LambdaFunction),
}

impl Mode {
    fn needs_client_id(self) -> bool {
        matches!(self, Mode::Local | Mode::Lambda(_))
    }

    fn needs_secret(self) -> bool {
        matches!(self, Mode::Local | Mode::Lambda(LambdaFunction::Token))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The OAuth client id registered at Monzo; `None` where the mode does not need it.
    pub client_id: Option<String>,
    /// The client secret; `None` where the mode does not need it.
    pub client_secret: Option<SecretSetting>,
    /// The registered `/callback` URL; `None` means "derive it" (from the listener locally, from
    /// the request on Lambda).
    pub return_url: Option<Url>,
    pub public_base_url: Option<Url>,
    pub monzo_auth_url: Url,
    pub monzo_api_url: Url,
    pub monzo_timeout: Duration,
    pub store: StoreSpec,
    pub listen_addr: SocketAddr,
    pub session_ttl: Duration,
    pub poll_interval: Duration,
    pub allowed_user_ids: Option<BTreeSet<String>>,
    /// Wrong user codes `/device` takes per address and window (0: no limit).
    pub guess_limit_per_address: u64,
    /// Wrong user codes per window from one network (IPv4 /24, IPv6 /48); 0: off.
    pub guess_limit_per_network: u64,
    /// Wrong user codes `/device` takes from everyone together per window (0: no limit).
    pub guess_limit_global: u64,
    pub guess_window: Duration,
    /// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`, plus the loopback
    /// addresses with `TRUST_FORWARDED_FOR=true`).
    pub trusted_proxies: TrustedProxies,
    /// Refresh grants `/oauth/token` forwards to Monzo per client address and second (local
    /// server; 0: no limit).
    pub refresh_limit_per_address: u32,
    /// The local server's connection limits (see `monzo_auth_server::connections::ServerLimits`).
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    /// `None`: the open-file limit less what the service keeps for itself.
    pub max_connections: Option<usize>,
}

/// Addresses and networks of reverse proxies in front of the local server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    pub fn contains(&self, addr: std::net::IpAddr) -> bool {
        let addr = match addr {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&addr))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn parse(value: &str, loopback: bool) -> Result<Self, ConfigError> {
        let mut nets = Vec::new();
        for item in value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            let net = item
                .parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        "TRUSTED_PROXIES",
                        "must be comma-separated IP addresses or networks (10.0.0.0/8, ::1)",
                    )
                })?;
            nets.push(net);
        }
        if loopback {
            nets.push("127.0.0.0/8".parse().expect("a network"));
            nets.push("::1/128".parse().expect("a network"));
        }
        Ok(Self(nets))
    }
}

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_STORE: &str = "sqlite:monzo-auth.db";
pub const DEFAULT_MONZO_AUTH_URL: &str = "https://auth.monzo.com/";
pub const DEFAULT_MONZO_API_URL: &str = "https://api.monzo.com";

impl Config {
    /// Reads the process environment.
    pub fn from_env(mode: Mode) -> Result<Self, ConfigError> {
        Self::from_lookup(mode, |name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (tests pass a map). An empty value counts as unset.
    pub fn from_lookup(
        mode: Mode,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        let store = match mode {
            Mode::Lambda(_) => StoreSpec::DynamoDb {
                table: get("TABLE_NAME")
                    .filter(|table| is_table_name(table))
                    .ok_or_else(|| {
                        ConfigError::new("TABLE_NAME", "must name the DynamoDB sessions table")
                    })?,
            },
            _ => parse_store(&get("STORE").unwrap_or_else(|| DEFAULT_STORE.into()))?,
        };
        Ok(Self {
            client_id: if mode.needs_client_id() {
                Some(read_client_id(&get)?)
            } else {
                None
            },
            client_secret: if mode.needs_secret() {
                Some(read_secret(&get)?)
            } else {
                None
            },
            return_url: get("RETURN_URL")
                .map(|v| parse_http_url("RETURN_URL", &v))
                .transpose()?,
            public_base_url: get("PUBLIC_BASE_URL")
                .map(|v| parse_http_url("PUBLIC_BASE_URL", &v))
                .transpose()?,
            monzo_auth_url: parse_http_url(
                "MONZO_AUTH_URL",
                &get("MONZO_AUTH_URL").unwrap_or_else(|| DEFAULT_MONZO_AUTH_URL.into()),
            )?,
            monzo_api_url: parse_http_url(
                "MONZO_API_URL",
                &get("MONZO_API_URL").unwrap_or_else(|| DEFAULT_MONZO_API_URL.into()),
            )?,
            monzo_timeout: read_secs(&get, "MONZO_TIMEOUT_SECS", 10, 1..=120)?,
            store,
            listen_addr: get("LISTEN_ADDR")
                .unwrap_or_else(|| DEFAULT_LISTEN_ADDR.into())
                .parse()
                .map_err(|_| {
                    ConfigError::new(
                        "LISTEN_ADDR",
                        "must be an address and port, e.g. 127.0.0.1:3000",
                    )
                })?,
            session_ttl: read_secs(&get, "SESSION_TTL_SECS", 600, 1..=86_400)?,
            poll_interval: read_secs(&get, "POLL_INTERVAL_SECS", 2, 0..=300)?,
            allowed_user_ids: get("ALLOWED_USER_IDS")
                .map(|v| parse_user_ids(&v))
                .transpose()?,
            guess_limit_per_address: read_count(&get, "DEVICE_GUESS_LIMIT_PER_ADDRESS", 10)?,
            guess_limit_per_network: read_count(&get, "DEVICE_GUESS_LIMIT_PER_NETWORK", 30)?,
            guess_limit_global: read_count(&get, "DEVICE_GUESS_LIMIT_GLOBAL", 1000)?,
            guess_window: read_secs(&get, "DEVICE_GUESS_WINDOW_SECS", 600, 1..=86_400)?,
            // TRUST_FORWARDED_FOR=true, from before TRUSTED_PROXIES: trust loopback proxies.
            trusted_proxies: TrustedProxies::parse(
                &get("TRUSTED_PROXIES").unwrap_or_default(),
                read_bool(&get, "TRUST_FORWARDED_FOR")?,
            )?,
            refresh_limit_per_address: read_count(&get, "REFRESH_LIMIT_PER_ADDRESS", 10)?
                .try_into()
                .map_err(|_| ConfigError::new("REFRESH_LIMIT_PER_ADDRESS", "is too large"))?,
            header_read_timeout: read_secs(&get, "HEADER_READ_TIMEOUT_SECS", 10, 1..=3600)?,
            body_read_timeout: read_secs(&get, "BODY_READ_TIMEOUT_SECS", 10, 1..=3600)?,
            idle_timeout: read_secs(&get, "IDLE_TIMEOUT_SECS", 30, 1..=3600)?,
            max_header_bytes: read_range(&get, "MAX_HEADER_BYTES", 32 * 1024, 1024..=1024 * 1024)?,
            max_connections: get("MAX_CONNECTIONS")
                .map(|_| read_range(&get, "MAX_CONNECTIONS", 0, 1..=1_000_000))
                .transpose()?,
        })
    }
}

fn read_client_id(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let client_id = get("MONZO_CLIENT_ID").ok_or_else(|| {
        ConfigError::new(
            "MONZO_CLIENT_ID",
            "is not set (set it to your Monzo OAuth client id, or run with --demo)",
        )
    })?;
    if client_id.trim() != client_id || client_id.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "MONZO_CLIENT_ID",
            "contains white space or control characters",
        ));
    }
    Ok(client_id)
}

fn read_secret(get: &impl Fn(&str) -> Option<String>) -> Result<SecretSetting, ConfigError> {
    match (get("MONZO_CLIENT_SECRET"), get("MONZO_CLIENT_SECRET_KMS")) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "MONZO_CLIENT_SECRET",
            "is set together with MONZO_CLIENT_SECRET_KMS; set only one",
        )),
        (Some(plain), None) => Ok(SecretSetting::Plain(plain.into())),
        (None, Some(ciphertext)) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(ciphertext.trim())
                .ok()
                .filter(|bytes| !bytes.is_empty())
                .map(SecretSetting::Kms)
                .ok_or_else(|| {
                    ConfigError::new("MONZO_CLIENT_SECRET_KMS", "is not base64 KMS ciphertext")
                })
        }
        (None, None) => Err(ConfigError::new(
            "MONZO_CLIENT_SECRET",
            "is not set (set it to your Monzo OAuth client secret, or MONZO_CLIENT_SECRET_KMS to its KMS ciphertext)",
        )),
    }
}

fn parse_http_url(variable: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(value).map_err(|_| ConfigError::new(variable, "is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(
            variable,
            "must be an http:// or https:// URL",
        ));
    }
    if url.fragment().is_some() {
        return Err(ConfigError::new(variable, "must not have a #fragment"));
    }
    Ok(url)
}

fn read_secs(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, ConfigError> {
    let Some(value) = get(variable) else {
        return Ok(Duration::from_secs(default));
    };
    match value.parse::<u64>() {
        Ok(secs) if range.contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(ConfigError::new(
            variable,
            format!(
                "must be a whole number of seconds from {} to {}",
                range.start(),
                range.end()
            ),
        )),
    }
}

fn read_count(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    get(variable).map_or(Ok(default), |value| {
        value.parse().map_err(|_| {
            ConfigError::new(variable, "must be a whole number (0 turns the limit off)")
        })
    })
}

fn read_range(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    let value = get(variable).map_or(Ok(default), |value| {
        value
            .parse()
            .map_err(|_| ConfigError::new(variable, "must be a whole number"))
    })?;
    if !range.contains(&value) {
        return Err(ConfigError::new(
            variable,
            format!("must be within {}..={}", range.start(), range.end()),
        ));
    }
    Ok(value)
}

fn read_bool(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<bool, ConfigError> {
    match get(variable).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(_) => Err(ConfigError::new(variable, "must be true or false")),
    }
}

fn parse_store(value: &str) -> Result<StoreSpec, ConfigError> {
    let invalid = || ConfigError::new("STORE", "must be sqlite:PATH, memory or dynamodb:TABLE");
    match value.split_once(':') {
        _ if value == "memory" => Ok(StoreSpec::Memory),
        Some(("sqlite", path)) if !path.is_empty() => Ok(StoreSpec::Sqlite(PathBuf::from(path))),
        Some(("dynamodb", table)) if is_table_name(table) => Ok(StoreSpec::DynamoDb {
            table: table.to_owned(),
        }),
        _ => Err(invalid()),
    }
}

/// DynamoDB's rule: 3 to 255 of `[a-zA-Z0-9_.-]`.
fn is_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

fn parse_user_ids(value: &str) -> Result<BTreeSet<String>, ConfigError> {
    let ids: BTreeSet<String> = value
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(ConfigError::new(
            "ALLOWED_USER_IDS",
            "lists no user id (unset it to let in anyone Monzo lets in)",
        ));
    }
    if let Some(bad) = ids.iter().find(|id| id.chars().any(char::is_whitespace)) {
        return Err(ConfigError::new(
            "ALLOWED_USER_IDS",
            format!("{bad:?} is not a Monzo user id (separate ids with commas)"),
        ));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(mode: Mode, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(mode, |name| map.get(name).cloned())
    }

    const REAL: &[(&str, &str)] = &[
        ("MONZO_CLIENT_ID", "oauth2client_1"),
        ("MONZO_CLIENT_SECRET", "mnzconf.s3cr3t"),
    ];

    #[test]
    fn defaults_follow_the_design() {
        let config = read(Mode::Local, REAL).unwrap();
        assert_eq!(config.listen_addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.store, StoreSpec::Sqlite("monzo-auth.db".into()));
        assert_eq!(config.session_ttl, Duration::from_secs(600));
        assert_eq!(config.poll_interval, Duration::from_secs(2));
        assert_eq!(config.monzo_auth_url.as_str(), "https://auth.monzo.com/");
        assert!(config.return_url.is_none());
        assert!(config.allowed_user_ids.is_none());
    }

    #[test]
    fn demo_mode_needs_no_client() {
        let config = read(Mode::Demo, &[]).unwrap();
        assert!(config.client_id.is_none() && config.client_secret.is_none());
    }

    #[test]
    fn each_problem_names_its_variable_and_hides_secrets() {
        // (variables to drop from REAL, variables to set on top, the variable blamed)
        type Case = (
            &'static [&'static str],
            &'static [(&'static str, &'static str)],
            &'static str,
        );
        let cases: &[Case] = &[
            (&["MONZO_CLIENT_ID"], &[], "MONZO_CLIENT_ID"),
            (&["MONZO_CLIENT_SECRET"], &[], "MONZO_CLIENT_SECRET"),
            (
                &[],
                &[("MONZO_CLIENT_SECRET_KMS", "AQID")],
                "MONZO_CLIENT_SECRET",
            ),
            (&[], &[("RETURN_URL", "not a url")], "RETURN_URL"),
            (&[], &[("RETURN_URL", "ftp://x/callback")], "RETURN_URL"),
            (&[], &[("MONZO_API_URL", "/relative")], "MONZO_API_URL"),
            (&[], &[("STORE", "postgres:x")], "STORE"),
            (&[], &[("STORE", "dynamodb:a b")], "STORE"),
            (&[], &[("LISTEN_ADDR", "localhost")], "LISTEN_ADDR"),
            (&[], &[("SESSION_TTL_SECS", "0")], "SESSION_TTL_SECS"),
            (&[], &[("POLL_INTERVAL_SECS", "-1")], "POLL_INTERVAL_SECS"),
            (&[], &[("ALLOWED_USER_IDS", " , ")], "ALLOWED_USER_IDS"),
            (&[], &[("MONZO_TIMEOUT_SECS", "ten")], "MONZO_TIMEOUT_SECS"),
            (
                &[],
                &[("DEVICE_GUESS_LIMIT_GLOBAL", "-1")],
                "DEVICE_GUESS_LIMIT_GLOBAL",
            ),
            (
                &[],
                &[("TRUST_FORWARDED_FOR", "maybe")],
                "TRUST_FORWARDED_FOR",
            ),
            (
                &[],
                &[("TRUSTED_PROXIES", "10.0.0.0/8, proxy.local")],
                "TRUSTED_PROXIES",
            ),
            (
                &[],
                &[("REFRESH_LIMIT_PER_ADDRESS", "lots")],
                "REFRESH_LIMIT_PER_ADDRESS",
            ),
        ];
        for (drop, set, variable) in cases {
            let mut vars: Vec<(&str, &str)> = REAL
                .iter()
                .copied()
                .filter(|(k, _)| !drop.contains(k))
                .collect();
            vars.extend_from_slice(set);
            let err = read(Mode::Local, &vars).unwrap_err();
            assert_eq!(err.variable, *variable, "{set:?}");
            let line = err.to_string();
            assert!(line.starts_with(variable), "{line}");
            assert!(!line.contains("s3cr3t") && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_and_networks_and_the_old_flag_means_loopback() {
        let config = read(
            Mode::Local,
            &[
                REAL[0],
                REAL[1],
                ("TRUSTED_PROXIES", "10.1.0.0/16, 192.0.2.7,2001:db8::/32"),
            ],
        )
        .unwrap();
        let trusted = |ip: &str| config.trusted_proxies.contains(ip.parse().unwrap());
        assert!(trusted("10.1.200.3") && trusted("192.0.2.7") && trusted("2001:db8::1"));
        assert!(
            trusted("::ffff:10.1.0.1"),
            "IPv4-mapped addresses count as IPv4"
        );
        assert!(!trusted("10.2.0.1") && !trusted("192.0.2.8") && !trusted("127.0.0.1"));
        let old = read(
            Mode::Local,
            &[REAL[0], REAL[1], ("TRUST_FORWARDED_FOR", "true")],
        )
        .unwrap();
        assert!(old.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(old.trusted_proxies.contains("::1".parse().unwrap()));
        assert!(!old.trusted_proxies.contains("192.0.2.1".parse().unwrap()));
        let none = read(Mode::Local, &[REAL[0], REAL[1]]).unwrap();
        assert!(none.trusted_proxies.is_empty());
        assert_eq!(none.refresh_limit_per_address, 10);
    }

    #[test]
    fn each_lambda_function_reads_what_it_needs() {
        let lambda = |f, vars: &[(&str, &str)]| read(Mode::Lambda(f), vars);
        let table = ("TABLE_NAME", "monzo-auth-sessions");
        let callback =
            lambda(LambdaFunction::Callback, &[table, ("MONZO_CLIENT_ID", "c")]).unwrap();
        assert_eq!(
            callback.store,
            StoreSpec::DynamoDb {
                table: "monzo-auth-sessions".into()
            }
        );
        assert!(
            callback.client_secret.is_none(),
            "callback never sees the secret"
        );
        let new = lambda(LambdaFunction::New, &[table, ("MONZO_CLIENT_ID", "c")]).unwrap();
        assert!(new.client_secret.is_none(), "new never sees the secret");
        let token = lambda(
            LambdaFunction::Token,
            &[
                table,
                ("MONZO_CLIENT_ID", "c"),
                ("MONZO_CLIENT_SECRET_KMS", "AQID"),
            ],
        )
        .unwrap();
        assert!(matches!(token.client_secret, Some(SecretSetting::Kms(_))));
        let err = lambda(LambdaFunction::Token, &[table, ("MONZO_CLIENT_ID", "c")]).unwrap_err();
        assert_eq!(err.variable, "MONZO_CLIENT_SECRET");
        let err = lambda(LambdaFunction::Callback, &[("STORE", "memory")]).unwrap_err();
        assert_eq!(err.variable, "TABLE_NAME");
    }

    #[test]
    fn parses_stores_and_user_ids() {
        assert_eq!(parse_store("memory").unwrap(), StoreSpec::Memory);
        assert_eq!(
            parse_store("sqlite:/var/lib/monzo-auth/s.db").unwrap(),
            StoreSpec::Sqlite("/var/lib/monzo-auth/s.db".into())
        );
        assert_eq!(
            parse_store("dynamodb:monzo-auth-sessions").unwrap(),
            StoreSpec::DynamoDb {
                table: "monzo-auth-sessions".into()
            }
        );
        let ids = parse_user_ids("user_1, user_2,,").unwrap();
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["user_1", "user_2"]);
    }
}
