//! monzo-auth's end-to-end tests: one test binary, real HTTP on loopback.

mod api;
mod callback;
mod cli;
mod deploy;
mod lambda;
mod pages;
mod process;
mod secrets;
mod store_conformance;
