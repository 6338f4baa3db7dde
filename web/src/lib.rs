//! mailbag-web: the LuCI-style admin page, served by mailbag itself with tiny-http.
//!
//! Layers, outside in: [`server`] (tiny-http threads, bounded bodies) → [`app`] (routing,
//! login, CSRF, JSON API) → [`backend::Backend`] (the daemon, or [`fake::FakeBackend`]).
//! [`settings`] is the one settings schema the daemon's page and the demo share. [`mime`]
//! turns a stored message into headers, a text preview and an attachment list with fixed
//! bounds. The page itself is static HTML/CSS/JS in [`assets`], embedded in the
//! binary; it renders every value from mail with `textContent`, never as markup, and the
//! JSON it reads escapes `<`, `>` and `&`.
//!
//! No handler panics on request data: bad input is a 4xx JSON `{"error": …}`.
//!
//! Without the `server` feature (router builds) only [`settings`] is built.

// Only `mailbag-hal` may hold unsafe code (its two audited MTD ioctls).
#![forbid(unsafe_code)]

#[cfg(feature = "server")]
pub mod app;
#[cfg(feature = "server")]
pub mod assets;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "server")]
pub mod backend;
#[cfg(feature = "server")]
pub mod crypt;
#[cfg(feature = "server")]
pub mod fake;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod mime;
#[cfg(feature = "server")]
pub mod server;
pub mod settings;

#[cfg(feature = "server")]
pub use app::{App, WebConfig};
#[cfg(feature = "server")]
pub use backend::Backend;
#[cfg(feature = "server")]
pub use server::WebServer;
