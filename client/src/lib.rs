//! The desktop side of monzo-auth: get a Monzo OAuth token for a desktop or command-line app
//! through a monzo-auth service.
//!
//! Monzo hands tokens only to a web redirect and refresh tokens only to a client that keeps a
//! secret. A monzo-auth service does both on the app's behalf; this crate is the app's half of
//! the exchange:
//!
//! 1. [`Client::start_login`] asks the service for a login session (`POST /new`, bound to this
//!    process with an RFC 7636 S256 code challenge) and returns a [`Login`] with the URL the
//!    person opens in a browser.
//! 2. [`Client::wait_for_token`] polls the service (`POST /token`) at the pace it asks for until
//!    the person has logged in and approved, and returns the [`Token`] exactly once. It rides
//!    out outages of the service or of Monzo with exponential backoff, stops when the session
//!    expires, and can be cancelled with a [`Cancel`] handle.
//! 3. Later, [`Client::refresh`] trades the token's refresh token for a new token
//!    (`POST /oauth/token`, RFC 6749 section 6): the service adds its client secret and asks
//!    Monzo, keeping nothing. Monzo rotates refresh tokens, so the new token replaces the old
//!    one wherever it was saved.
//!
//! Every failure is one [`Error`] variant, matching one answer of the service's HTTP contract.
//! No token (access or refresh), poll id, code or verifier is ever logged, shown by `Debug`,
//! or put into an error.
//!
//! # Example
//!
//! ```no_run
//! use monzo_auth_client::{Cancel, Client, Progress, Url};
//!
//! # async fn example() -> Result<(), monzo_auth_client::Error> {
//! let client = Client::new(Url::parse("http://127.0.0.1:3000/").unwrap())?;
//! let login = client.start_login().await?;
//! eprintln!("Open {} to log in to Monzo", login.login_url());
//!
//! let cancel = Cancel::new(); // hand a clone to a Ctrl-C handler
//! let token = client
//!     .wait_for_token(&login, &cancel, |progress| {
//!         if let Progress::Retrying { reason, after } = progress {
//!             eprintln!("{reason}, retrying in {} s", after.as_secs());
//!         }
//!     })
//!     .await?;
//! println!("logged in as {}", token.user_id);
//!
//! // Hours later, when the access token has expired:
//! if let Some(refresh_token) = &token.refresh_token {
//!     let token = client.refresh(refresh_token).await?; // save it: the old one is used up
//!     println!("good until {}", token.expires);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! After Monzo issues a token, the account holder must still approve access in the Monzo app
//! (Strong Customer Authentication) before data endpoints such as `/accounts` answer; until then
//! they answer 403 `forbidden.insufficient_permissions`. The CLI's `--wait-for-approval` waits
//! for that.
//!
//! # The `monzo-auth` command
//!
//! The package also builds `monzo-auth`, a command-line front end:
//!
//! ```text
//! monzo-auth login --service https://abc123.execute-api.eu-west-2.amazonaws.com/
//! ```
//!
//! It opens the system browser at Monzo's login page (the `BROWSER` variable is honoured: a
//! `:`-separated list of commands, `%s` standing for the URL), shows a spinner on stderr while it
//! waits, and prints the token on stdout.
//!
//! | flag | meaning |
//! |---|---|
//! | `--service URL` | the monzo-auth service's base URL (or `MONZO_AUTH_SERVICE`); required |
//! | `--no-browser` | print the login URL on stderr instead of opening a browser |
//! | `--qr` | also draw the login URL as a QR code on stderr, to log in on a phone |
//! | `--format json\|env\|token` | how the token is printed (default `json`, see below) |
//! | `--output FILE` | write the token to FILE (created or narrowed to mode 0600), not stdout |
//! | `--wait-for-approval` | before printing, wait until the token is approved in the Monzo app |
//! | `--approval-timeout SECS` | how long `--wait-for-approval` waits (default 300) |
//! | `--monzo-api-url URL` | Monzo's API, for `--wait-for-approval` (or `MONZO_API_URL`; default `https://api.monzo.com`) |
//!
//! Formats: `json` is the [`Token`] serialized as below, on one line; `env` is
//! `MONZO_ACCESS_TOKEN=…`, `MONZO_REFRESH_TOKEN=…` (when there is one), `MONZO_USER_ID=…` and
//! `MONZO_TOKEN_EXPIRES=…`, one per line, quoted for a POSIX shell where needed; `token` is the
//! access token alone.
//!
//! `monzo-auth refresh` trades a saved token for a new one through [`Client::refresh`]:
//!
//! ```text
//! monzo-auth login --service "$SERVICE" --output token.json
//! monzo-auth refresh --service "$SERVICE" --input token.json --output token.json
//! monzo-auth refresh --service "$SERVICE" --format token < token.json
//! ```
//!
//! It reads the refresh token from what `login` printed or wrote (`json` or `env`), or, on
//! stdin only, from the refresh token alone on one line; never from the command line, where
//! `ps` and shell history would keep it. Monzo rotates refresh tokens: once the refresh is
//! done the old one no longer works, so the new token must be kept.
//!
//! | flag | meaning |
//! |---|---|
//! | `--service URL` | as for `login` |
//! | `--input FILE` | read the token from FILE (default: stdin, which must not be a terminal) |
//! | `--format json\|env\|token` | how the new token is printed (default: the input's format, `json` for a bare refresh token) |
//! | `--output FILE` | write the new token to FILE (mode 0600) instead of stdout; the file is replaced whole (a new file renamed over it), so FILE may be the `--input` file |
//!
//! A 502, 503 or lost connection is tried again, three tries in all.
//!
//! Exit codes (of both commands):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success: the token was printed or written |
//! | 2 | usage error: a bad flag, a `--service` that is not an http(s) URL, or no refresh token in the input |
//! | 3 | access was denied at Monzo, or the service does not allow this Monzo user |
//! | 4 | the login session expired before the login was completed |
//! | 5 | the service could not be reached, or stayed unavailable |
//! | 6 | Monzo refused the login or the refresh token (invalid grant: log in again), or any other failure |
//! | 7 | `--wait-for-approval` timed out before access was approved in the Monzo app |
//! | 130 | interrupted (Ctrl-C or SIGTERM) |
//!
//! # The token's serialized form
//!
//! [`Token`] serializes (and the CLI prints, with `--format json`) as
//!
//! ```json
//! {"access_token":"eyJ…","refresh_token":"eyJ…","expires":"2026-11-29T15:22:03Z","expires_in":21600,"token_type":"Bearer","user_id":"user_00009…"}
//! ```
//!
//! `refresh_token` is left out when Monzo gave none. After a refresh, `expires` is worked out
//! from `expires_in`. Deserializing accepts this form as well as the service's own answer,
//! where the access token is called `token`.

#![warn(missing_docs)]

mod answers;
mod cancel;
mod client;
mod device;
mod error;
mod login;
mod pacing;
mod pkce;
#[cfg(feature = "profiles")]
pub mod profile;
mod progress;
mod refresh;
mod token;

pub use cancel::Cancel;
pub use client::Client;
pub use device::DeviceLogin;
pub use error::Error;
pub use login::Login;
pub use progress::{Progress, RetryReason};
pub use token::Token;
/// Re-exported so that callers need no `url` dependency of their own to name the service.
pub use url::Url;
