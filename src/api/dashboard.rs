//! The live dashboard at `/`: static files embedded in the binary (no build
//! step); the page itself talks to `/v1/feed`. Charts are uPlot (MIT,
//! vendored unmodified in `src/dashboard/vendor`).

use super::routes::Routes;
use actix_web::http::header;
use actix_web::HttpResponse;

const INDEX: &str = include_str!("../dashboard/index.html");
const JS: &str = include_str!("../dashboard/dashboard.js");
const CSS: &str = include_str!("../dashboard/dashboard.css");
const UPLOT_JS: &str = include_str!("../dashboard/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../dashboard/vendor/uPlot.min.css");

/// Path, body, content type.
const FILES: [(&str, &str, &str); 5] = [
    ("/", INDEX, "text/html; charset=utf-8"),
    ("/assets/dashboard.js", JS, "text/javascript; charset=utf-8"),
    ("/assets/dashboard.css", CSS, "text/css; charset=utf-8"),
    (
        "/assets/uPlot.iife.min.js",
        UPLOT_JS,
        "text/javascript; charset=utf-8",
    ),
    (
        "/assets/uPlot.min.css",
        UPLOT_CSS,
        "text/css; charset=utf-8",
    ),
];

pub fn routes(r: &mut Routes<'_>) {
    for (path, body, content_type) in FILES {
        r.asset(path, move || file(body, content_type));
    }
}

async fn file(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
