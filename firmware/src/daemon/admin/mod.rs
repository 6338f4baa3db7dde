//! **admin**: what the operator sees and does. The operator's queue actions — flush,
//! delete, retry, bounce — implemented once ([`actions`]); the control socket behind
//! `mailbag queue` and LuCI's rpcd plugin ([`control`], its JSON views [`json_view`]) and
//! the admin page ([`web`], its backend `web_backend`, the queue list `queue_view` and the
//! settings form `settings`) all call them; applying a changed configuration to the
//! running daemon ([`reload`]).
//!
//! The page and its views exist only with the `web` cargo feature (plain Linux and the silo);
//! a router build leaves them out, LuCI (luci-app-mailbag) being its admin UI through the
//! control socket.
//!
//! Admin sits on top: it uses the spool's, delivery's and inbound's handles, never their
//! state; none of them imports admin. What it offers is for the daemon's wiring only:
//! [`actions::Actions`], [`reload::Reloader`], [`control::start`], [`web::start`].

pub mod actions;
#[cfg(feature = "web")]
mod config_tree;
pub mod control;
#[cfg(feature = "doctor")]
pub mod doctor;
pub mod json_view;
pub mod message_head;
#[cfg(feature = "web")]
mod queue_view;
pub mod reload;
#[cfg(feature = "web")]
mod settings;
#[cfg(feature = "web")]
pub mod web;
#[cfg(feature = "web")]
pub mod web_backend;
#[cfg(test)]
#[cfg(feature = "web")]
mod web_backend_tests;
