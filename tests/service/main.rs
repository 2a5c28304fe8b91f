//! The service in process, over loopback: every route of the local shape against the stand-in
//! for Monzo (a few cases run the real server binary where only it shows the behaviour).

mod api;
mod callback;
mod device;
mod edges;
mod pages;
mod slow_clients;
mod upstream;
