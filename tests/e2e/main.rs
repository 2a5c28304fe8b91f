//! monzo-auth's end-to-end tests: one test binary, real HTTP on loopback.

mod api;
mod artefacts;
mod browser;
mod callback;
mod cli;
mod device;
mod docs;
mod edges;
mod flow;
mod lambda;
mod pages;
mod process;
mod profiles;
mod secrets;
mod slow_clients;
mod store_conformance;
mod upstream;
