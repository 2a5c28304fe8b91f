//! The crate graph is the deployment graph: the binaries the tests run carry only the adapters
//! their Cargo.toml names. Checked in the artefacts themselves, by marks each adapter leaves: the
//! SQLite file header string (bundled SQLite), the DynamoDB and KMS wire protocols' target
//! prefixes (the AWS SDK clients), the logout path of Monzo's HTTP client (`monzo-auth-monzo-http`;
//! the demo stand-in in the server serves the same path), the pages' style sheet
//! (`monzo-auth-pages`, compiled in).

use e2e_tests::*;

const SQLITE: &str = "SQLite format 3";
const DYNAMODB: &str = "DynamoDB_20120810";
const KMS: &str = "TrentService";
const MONZO_HTTP: &str = "/oauth2/logout";
const PAGES: &str = "color-scheme:light dark;--accent:#ff4f40";

fn carries(binary: &str, mark: &str) -> bool {
    let bytes = std::fs::read(workspace_binary(binary)).unwrap();
    contains_bytes(&bytes, mark.as_bytes())
}

#[test]
fn each_binary_links_only_the_adapters_it_uses() {
    for (binary, links) in [
        ("monzo-auth-new", &[DYNAMODB][..]),
        ("monzo-auth-callback", &[DYNAMODB, PAGES]),
        ("monzo-auth-token", &[DYNAMODB, KMS, MONZO_HTTP]),
        ("monzo-auth-server", &[SQLITE, MONZO_HTTP, PAGES]),
        ("monzo-auth", &[]),
    ] {
        for mark in [SQLITE, DYNAMODB, KMS, MONZO_HTTP, PAGES] {
            assert_eq!(
                carries(binary, mark),
                links.contains(&mark),
                "{binary} {} {mark:?}",
                if links.contains(&mark) {
                    "lacks"
                } else {
                    "carries"
                }
            );
        }
    }
}
