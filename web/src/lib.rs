//! mailbag-web: the LuCI-style admin page, served by mailbag itself with tiny-http.
//!
//! Layers, outside in: [`server`] (tiny-http threads, bounded bodies) → [`app`] (routing,
//! login, CSRF, JSON API) → [`backend::Backend`] (the daemon, or [`fake::FakeBackend`]).
//! [`mime`] turns a stored message into headers, a text preview and an attachment list
//! with fixed bounds. The page itself is static HTML/CSS/JS in [`assets`], embedded in the
//! binary; it renders every value from mail with `textContent`, never as markup, and the
//! JSON it reads escapes `<`, `>` and `&`.
//!
//! No handler panics on request data: bad input is a 4xx JSON `{"error": …}`.

// Only `mailbag-hal` may hold unsafe code (its two audited MTD ioctls).
#![forbid(unsafe_code)]

pub mod app;
pub mod assets;
pub mod auth;
pub mod backend;
pub mod crypt;
pub mod fake;
pub mod http;
pub mod mime;
pub mod server;

pub use app::{App, WebConfig};
pub use backend::Backend;
pub use server::WebServer;
