//! The monzo-auth service a command talks to, and the other URLs given on the command line.

use clap::Args;
use monzo_auth_client::{Client, Error, Url};

use crate::error::CliError;

/// A client of `--service`, or a usage error that says what is wrong with it (with the URL
/// the person probably meant, for `127.0.0.1:3000` or `localhost:3000`).
pub fn service_client(service: &str) -> Result<Client, CliError> {
    let bare = !service.contains("://");
    let suggest = || {
        CliError::Usage(format!(
            "--service: {service:?} is not a URL; did you mean http://{}/ ?",
            service.trim_end_matches('/')
        ))
    };
    let url = match Url::parse(service) {
        Ok(url) if bare && !matches!(url.scheme(), "http" | "https") => return Err(suggest()),
        Ok(url) => url,
        Err(_) if bare => return Err(suggest()),
        Err(error) => {
            return Err(CliError::Usage(format!(
                "--service: {service:?} is not a URL ({error})"
            )));
        }
    };
    Client::new(url).map_err(|error| match error {
        Error::InvalidServiceUrl { reason } => {
            CliError::Usage(format!("--service: the URL is not usable: {reason}"))
        }
        error => error.into(),
    })
}

/// A URL flag's value, or a usage error naming the flag.
pub fn parse_url(flag: &str, value: &str) -> Result<Url, CliError> {
    Url::parse(value)
        .map_err(|error| CliError::Usage(format!("{flag}: {value:?} is not a URL ({error})")))
}

/// `--service`, which both commands take.
#[derive(Args, Debug)]
pub struct ServiceArg {
    // The help is an attribute, not a doc comment: rustdoc wants URLs in a doc comment to be
    // links, which would look odd in --help. A string, checked in `login`: clap's own parse
    // error spans several lines.
    #[arg(
        long,
        env = "MONZO_AUTH_SERVICE",
        value_name = "URL",
        help = "The monzo-auth service's base URL, e.g. http://127.0.0.1:3000/ or \
                https://abc123.execute-api.eu-west-2.amazonaws.com/"
    )]
    pub(crate) service: String,
}
