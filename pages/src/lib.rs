//! What a person's browser sees: Monzo's redirect to `/callback` and the pages it leads to, the
//! `/device` pages where a user code is entered and confirmed, the local server's landing page
//! and the page for a browser at an unknown route. Askama templates (`templates/`) and inline
//! assets (`assets/`). Linked by the `callback` function and the local server only: the `new`
//! and `token` functions answer JSON and carry none of it.

mod callback;
mod device;
mod page;

use axum::Router;
use axum::response::{IntoResponse as _, Response};
use axum::routing::get;
use shared::app::Pages;
use shared::http::AppState;

/// The pages, for the composition root (`shared::app::Adapters::pages`).
pub static PAGES: Pages = Pages {
    callback: callback::routes,
    device: device::routes,
    landing,
    not_found,
};

/// `GET /`: the local server's landing page (the demo's walks a login).
fn landing(demo: bool) -> Router<AppState> {
    Router::new().route("/", get(move || async move { page::landing(demo) }))
}

/// The page for a browser at an unknown route.
fn not_found() -> Response {
    page::not_found().into_response()
}
